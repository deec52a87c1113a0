"""The dashboard's wallet: EIP-1193 bridge, sign-in with Ethereum, transactions built in Python, user-facing errors."""
