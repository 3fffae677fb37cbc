"""A FlowerTune-style LoRA fine-tuning of simfl's tiny T5, as a Flower app (server_app, client_app, task)."""
