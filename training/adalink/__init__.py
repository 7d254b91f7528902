"""AdaLink adapters: the file format and its validator (torch-free, shared with the gateway), the module and its
training (torch)."""
