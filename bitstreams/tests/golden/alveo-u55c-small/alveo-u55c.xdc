## Alveo U55C: PCIe x16 reference clock and PERST# (port names of the generated block design).
set_property PACKAGE_PIN AR15 [get_ports {pcie_refclk_clk_p}]
set_property PACKAGE_PIN AR14 [get_ports {pcie_refclk_clk_n}]
create_clock -period 10.000 -name pcie_refclk [get_ports {pcie_refclk_clk_p}]
set_property -dict {PACKAGE_PIN BF41 IOSTANDARD LVCMOS18 PULLUP true} [get_ports {pcie_perstn}]
set_false_path -from [get_ports {pcie_perstn}]

## HBM over-temperature trip output must be driven low for the card to stay powered (BE45).
set_property -dict {PACKAGE_PIN BE45 IOSTANDARD LVCMOS18} [get_ports {hbm_cattrip}]
set_false_path -to [get_ports {hbm_cattrip}]

set_property CONFIG_VOLTAGE 1.8 [current_design]
set_property BITSTREAM.CONFIG.CONFIGRATE 85.0 [current_design]
set_property BITSTREAM.CONFIG.SPI_BUSWIDTH 4 [current_design]
set_property BITSTREAM.CONFIG.SPI_32BIT_ADDR YES [current_design]
set_property BITSTREAM.GENERAL.COMPRESS TRUE [current_design]
