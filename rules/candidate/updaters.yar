/*
   Heuristics for trojanised program updaters.
   NEW in this update (not in the released rules).

   This rule deliberately repeats the mistake of Sophos' "Shh/Updater-B"
   (September 2012): it keys on what every legitimate updater does, so it
   flags clean updaters (Squirrel's Update.exe among them) and would
   quarantine the very programs that deliver fixes. fpgate must block it.
*/

rule Shh_Updater_B : updater heuristic
{
    meta:
        description = "Suspicious program updater: fetches files and starts processes (heuristic)"
        author = "fpgate example rules"
        date = "2026-11-20"
        score = 60

    strings:
        $upd1 = "Update.exe" ascii wide nocase
        $upd2 = "UpdateSelf" ascii wide
        $dl1 = "URLDownloadToFile" ascii
        $dl2 = "Downloading" ascii wide
        $ex1 = "CreateProcess" ascii
        $ex2 = "ShellExecute" ascii
        $ex3 = "Process.Start" ascii wide
        $ex4 = "get_StartInfo" ascii

    condition:
        uint16(0) == 0x5A4D and 1 of ($upd*, $dl*) and 1 of ($ex*)
}
