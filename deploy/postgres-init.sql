-- Second database on the same PostgreSQL: Terrapin's artifact store (plans, saved outputs, run logs).
-- Temporal's auto-setup creates its own databases (temporal, temporal_visibility).
CREATE USER terrapin WITH PASSWORD 'terrapin';
CREATE DATABASE terrapin OWNER terrapin;
