"""The wallet gateway simulator (docs/wallet-gateway.md): ledger, test payers, in-process peer, HTTP server."""
