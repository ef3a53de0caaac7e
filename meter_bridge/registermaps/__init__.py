"""Bundled Modbus register maps (YAML data files; see meter_bridge.registermap)."""
