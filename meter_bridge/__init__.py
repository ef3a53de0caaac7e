"""meter_bridge: the gateway beside the meters (Modbus → interval readings → EIP-712 → outbox → chain)."""
