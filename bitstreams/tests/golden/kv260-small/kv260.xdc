## KV260: the design has no package pins of its own (clock, reset and data come from the PS).
## The array clock (pl_clk0 at clock.target_mhz) is constrained by the PS IP; timing.xdc adds
## nothing for this board.
set_property BITSTREAM.GENERAL.COMPRESS TRUE [current_design]
