"""The large models, their tokenizer and adapters: registry, stand-ins, tokenizer, backbone, LoRA, stacked LoRA."""
