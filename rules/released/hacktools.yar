/*
   Credential-theft and lateral-movement tools.
   Example ruleset of the fpgate project (released baseline).
*/

import "pe"

rule HackTool_Mimikatz_Strings : hacktool credential_access
{
    meta:
        description = "Mimikatz credential dumper: module names and author banner"
        author = "fpgate example rules"
        date = "2026-01-12"
        reference = "https://attack.mitre.org/software/S0002/"
        score = 80

    strings:
        $m1 = "sekurlsa::logonpasswords" ascii wide nocase
        $m2 = "lsadump::sam" ascii wide nocase
        $m3 = "kerberos::golden" ascii wide nocase
        $b1 = "gentilkiwi" ascii wide
        $b2 = "Benjamin DELPY" ascii wide
        $b3 = "mimikatz" ascii wide nocase fullword

    condition:
        uint16(0) == 0x5A4D and filesize < 5MB and
        (2 of ($m*) or (1 of ($m*) and 1 of ($b*)) or all of ($b*))
}

rule HackTool_Rubeus_Kerberos : hacktool credential_access
{
    meta:
        description = "Rubeus Kerberos abuse toolkit (.NET)"
        author = "fpgate example rules"
        date = "2026-01-12"

    strings:
        $s1 = "asktgt" wide
        $s2 = "kerberoast" wide nocase
        $s3 = "/ticket:" wide
        $s4 = "Rubeus.Commands" ascii
        $g1 = "658C8B7F-3664-4A95-9572-A3E5871DFC06" ascii wide nocase

    condition:
        uint16(0) == 0x5A4D and (pe.imports("mscoree.dll") > 0 and (3 of ($s*) or $g1))
}

rule HackTool_PsExec_Service_Renamed : hacktool lateral_movement
{
    meta:
        description = "PsExec service binary outside its usual name (LOKI-style filename check)"
        author = "fpgate example rules"
        date = "2026-02-03"

    strings:
        $a1 = "PSEXESVC" wide ascii
        $a2 = "\\\\.\\pipe\\psexecsvc" wide ascii nocase
        $a3 = "Sysinternals PsExec" wide ascii

    condition:
        uint16(0) == 0x5A4D and 2 of them and not filename matches /^psexe(c|svc)(64)?\.exe$/i
}
