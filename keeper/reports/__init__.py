"""Keeper reports (pandas): one module per subject — market prices/volumes, battery use and fee
splits, renewable ratio/CO2 and C-REV. Each builds DataFrames from chain events and the
keeper's database and can write CSV."""
