/*
   Commodity malware and post-exploitation frameworks.
   Example ruleset of the fpgate project (released baseline).
*/

rule Crime_CobaltStrike_Beacon_Config : c2 cobaltstrike
{
    meta:
        description = "Cobalt Strike beacon configuration block (XOR 0x69 and 0x2e encodings)"
        author = "fpgate example rules"
        date = "2026-01-20"
        score = 90

    strings:
        // setting 1 (protocol), 2 (port), 3 (sleeptime) in the TLV layout
        $cfg_69 = { 69 68 69 68 69 6B 69 68 69 6B ?? ?? 69 6A }
        $cfg_2e = { 2E 2F 2E 2F 2E 2C 2E 2F 2E 2C ?? ?? 2E 2D }
        $pipe = "\\\\.\\pipe\\MSSE-" ascii wide
        $ua = "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; WOW64; Trident/5.0; BOIE9;ENUS)" ascii

    condition:
        any of ($cfg*) or ($pipe and $ua)
}

rule Ransom_Generic_Note_Strings : ransomware
{
    meta:
        description = "Ransom note text embedded in an executable"
        author = "fpgate example rules"
        date = "2026-03-01"

    strings:
        $n1 = "Your files have been encrypted" ascii wide nocase
        $n2 = "All your files are encrypted" ascii wide nocase
        $p1 = "bitcoin" ascii wide nocase
        $p2 = ".onion" ascii wide
        $p3 = "decryptor" ascii wide nocase
        $x1 = "vssadmin delete shadows /all /quiet" ascii wide nocase
        $x2 = "wmic shadowcopy delete" ascii wide nocase

    condition:
        (uint16(0) == 0x5A4D or uint32(0) == 0x464C457F) and
        1 of ($n*) and (2 of ($p*) or 1 of ($x*))
}

rule Crime_Emotet_Loader_Strings : loader emotet
{
    meta:
        description = "Emotet loader: RC4 key schedule and hardcoded C2 format strings"
        author = "fpgate example rules"
        date = "2026-03-14"

    strings:
        $fmt1 = "%s:Zone.Identifier" wide
        $fmt2 = "%u.%u.%u.%u:%u" ascii wide
        $rc4 = { 8A 04 3? 02 C? 0F B6 C? 8A 0C 3? 88 04 3? 88 0C 3? }
        $reg = "Software\\Microsoft\\Windows\\CurrentVersion\\Run" wide

    condition:
        uint16(0) == 0x5A4D and filesize < 1MB and $rc4 and 2 of ($fmt*, $reg)
}
