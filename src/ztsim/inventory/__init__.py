"""SIMs (physical and eSIM), their lifecycle, stock import, devices and SIM-to-device binding."""

__all__: list[str] = []
