"""The hardware model: what a training step costs on a device nobody measured (docs/hardware-model.md)."""
