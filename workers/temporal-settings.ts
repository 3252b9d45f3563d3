/** Where Temporal is: TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE when set, else the local dev server's defaults. */
export interface TemporalSettings {
  address: string;
  namespace: string;
  /** The Web UI's base URL, for links printed to operators. */
  uiUrl: string;
  /** Whether the address came from the environment (then nothing is started here). */
  external: boolean;
}

export const DEV_SERVER_PORT = 7233;

export function temporalSettings(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  // An empty variable counts as unset, as shells and CI templates often leave one.
  const given = env.TEMPORAL_ADDRESS || undefined;
  const address = given ?? `127.0.0.1:${DEV_SERVER_PORT}`;
  const port = Number(address.split(':').at(-1));
  const host = address.slice(0, address.lastIndexOf(':')) || '127.0.0.1';
  return {
    address,
    namespace: env.TEMPORAL_NAMESPACE ?? 'default',
    uiUrl: env.TEMPORAL_UI_URL ?? `http://${host}:${Number.isFinite(port) ? port + 1000 : 8233}`,
    external: given !== undefined,
  };
}

export function workflowLink(settings: TemporalSettings, workflowId: string): string {
  return `${settings.uiUrl}/namespaces/${encodeURIComponent(settings.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}
