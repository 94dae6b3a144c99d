"""Pure domain core: exact money and the cost-share chain; imports only the standard library."""
