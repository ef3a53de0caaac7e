"""coop_demo: one command that runs a simulated co-op day end to end on a local chain.

Modbus meter simulators → meter bridge → MeterRegistry; participants' strategies → keeper HTTP →
EnergyMarket; community battery with TSL fees; a DAO vote at noon; C-REV issuance and a
retirement; then a report folder (CSV, PNG plots, one HTML page).
"""
