import { agentActions } from './agent-actions.js';
import { codeLineages } from './code-lineages.js';
import { costMetrics } from './cost-metrics.js';
import type { EventType } from './event-type.js';
import { evolutionRuns } from './evolution-runs.js';
import { generations } from './generations.js';
import { individuals } from './individuals.js';
import { llmLogs } from './llm-logs.js';
import { paretoFronts } from './pareto-fronts.js';
import { performanceMetrics } from './performance-metrics.js';
import { qualityMetrics } from './quality-metrics.js';
import { resourceMetrics } from './resource-metrics.js';

export * from './event-type.js';
export * from './wire-format.js';
export * from './confluent-framing.js';
export {
  agentActions,
  codeLineages,
  costMetrics,
  evolutionRuns,
  generations,
  individuals,
  llmLogs,
  paretoFronts,
  performanceMetrics,
  qualityMetrics,
  resourceMetrics,
};

/** Every event type the pipeline carries, by name. */
export const eventTypes: readonly EventType[] = [
  costMetrics,
  performanceMetrics,
  resourceMetrics,
  qualityMetrics,
  evolutionRuns,
  generations,
  individuals,
  paretoFronts,
  codeLineages,
  llmLogs,
  agentActions,
];
