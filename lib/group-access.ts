import { Admin, FindCoordinatorKeyTypes } from '@platformatic/kafka';
import type { Config } from './config.js';
import { KafkaAuthorizationError, platformaticClientOptions, type OAuthBearerProvider } from './kafka.js';

/**
 * Why kafkajs could not find a consumer group's coordinator. kafkajs turns FindCoordinator's
 * GROUP_AUTHORIZATION_FAILED (the principal has no ACL on the group) into "Failed to find group
 * coordinator" and keeps the cause only in a debug log line. This asks the broker once more with
 * @platformatic/kafka, whose errors keep the protocol error, and returns a
 * KafkaAuthorizationError naming the group and the principal when that is the cause; otherwise
 * the original error. Only on the way to a fatal exit: never on the data path.
 */
export async function explainGroupCoordinatorError(err: unknown, config: Config['kafka'], groupId: string, oauthBearerProvider?: OAuthBearerProvider, timeoutMs = 10_000): Promise<unknown> {
  if (!(err instanceof Error) || !/group coordinator/i.test(err.message)) return err;
  const admin = new Admin({
    ...platformaticClientOptions(config, 'diagnose', oauthBearerProvider),
    connectTimeout: Math.min(timeoutMs, config.connectionTimeoutMs),
    retries: 0,
  });
  try {
    await Promise.race([
      admin.findCoordinator({ keyType: FindCoordinatorKeyTypes.GROUP, keys: [groupId] }),
      new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), timeoutMs).unref()),
    ]);
    return err;
  } catch (probe) {
    return mentionsGroupAuthorization(probe) ? new KafkaAuthorizationError(`use consumer group ${groupId}`, config, probe) : err;
  } finally {
    await admin.close().catch(() => undefined);
  }
}

/** Whether an error (or an error nested in it: platformatic nests protocol errors) is GROUP_AUTHORIZATION_FAILED. */
function mentionsGroupAuthorization(err: unknown, depth = 0): boolean {
  if (depth > 6 || err === null || typeof err !== 'object') return false;
  const e = err as { apiId?: unknown; code?: unknown; message?: unknown; errors?: unknown; cause?: unknown; response?: unknown };
  if (e.apiId === 'GROUP_AUTHORIZATION_FAILED' || /group authorization failed|GROUP_AUTHORIZATION_FAILED/i.test(String(e.message ?? ''))) return true;
  const errors = e.errors && typeof e.errors === 'object' ? Object.values(e.errors as Record<string, unknown>) : [];
  if (errors.some((n) => mentionsGroupAuthorization(n, depth + 1)) || mentionsGroupAuthorization(e.cause, depth + 1)) return true;
  // Kafka's error code 30 in a response the client attached.
  const response = e.response as { errorCode?: unknown; coordinators?: Array<{ errorCode?: unknown }> } | undefined;
  return response?.errorCode === 30 || (response?.coordinators ?? []).some((c) => c.errorCode === 30);
}
