"""Reading and writing the lakehouse (all IO takes ``spark`` explicitly)."""
