/*
   Web shells. Uses the `extension` external variable (set per file by
   fpgate, LOKI and THOR).
   Example ruleset of the fpgate project (released baseline).
*/

rule Webshell_PHP_Eval_Base64 : webshell php
{
    meta:
        description = "PHP one-liner that evaluates base64-decoded request data"
        author = "fpgate example rules"
        date = "2026-02-10"

    strings:
        $e1 = /eval\s*\(\s*base64_decode\s*\(\s*\$_(POST|GET|REQUEST|COOKIE)/ nocase
        $e2 = /assert\s*\(\s*\$_(POST|GET|REQUEST)\[/ nocase

    condition:
        (extension == ".php" or extension == ".phtml" or uint32(0) == 0x68703F3C) and
        filesize < 200KB and any of them
}
