/*
   Packed executables whose packer marks were tampered with.
   Example ruleset of the fpgate project (released baseline).
*/

import "pe"
import "math"

rule Packer_UPX_Tampered_Sections : packer
{
    meta:
        description = "UPX-packed PE whose UPX section names were renamed to hide the packer"
        author = "fpgate example rules"
        date = "2026-04-02"

    strings:
        $upx_stub = { 60 BE ?? ?? ?? ?? 8D BE ?? ?? ?? ?? 57 83 CD FF EB 10 }
        $upx_magic = "UPX!"

    condition:
        uint16(0) == 0x5A4D and pe.is_pe and
        $upx_stub at pe.entry_point and
        not $upx_magic and
        for all s in pe.sections : ( not s.name startswith "UPX" ) and
        math.entropy(pe.sections[1].raw_data_offset, pe.sections[1].raw_data_size) > 7.2
}
