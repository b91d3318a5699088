"""Small pieces every stage shares: atomic writes, provenance, device choice, clear CLI errors."""
