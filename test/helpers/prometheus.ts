// The Prometheus server the tests start is the one the main job starts (scripts/demo.ts).
export * from '../../scripts/prometheus-server.js';
