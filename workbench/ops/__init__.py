"""Operations: health and readiness, Prometheus metrics, structured logs, alerts, backups,
`workbench doctor`. Everything listens to the engine's events or reads its state on request;
nothing here is on the path from a bar to an order (docs/deploy.md)."""
