/*
   Anti-malware test files.
   Example ruleset of the fpgate project (released baseline).
*/

rule Test_EICAR_File : test
{
    meta:
        description = "EICAR anti-malware test file"
        author = "fpgate example rules"
        reference = "https://www.eicar.org/download-anti-malware-testfile/"

    strings:
        $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

    condition:
        $eicar at 0 and filesize < 128
}
