// Type test: compiled with `tsc --noEmit` (npm run typecheck). Must compile; each line
// marked as an expected error must fail to compile.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { Guard, LongLivedAttachment, Pm2Info, Report, Shutdown, ShutdownOptions, signalName } from '../..';

const options: ShutdownOptions = {
  preset: 'kubernetes',
  systemdNotify: false,
  drainDelay: 5000,
  announceProbes: 2,
  drainTimeout: 10_000,
  closeTimeout: 5000,
  connectionGrace: 100,
  gracePeriod: null,
  forceAt: 2,
  terminateAt: null,
  forcedExitCode: 3,
  closeStrategy: 'gradual',
  signals: ['SIGTERM', 'SIGINT', 10],
  exitOnDone: false,
  env: true,
};
const sd = new Shutdown(options);
const stop: () => void = sd.listenSignals();
const pm2: Pm2Info | null = sd.pm2({ readyOnListen: false });
if (pm2 !== null && !pm2.fits) console.error(pm2.killTimeout, pm2.killTimeoutSource);
const readySent: boolean = sd.notifyReady();
stop();

const phase: 'running' | 'draining' | 'closing' | 'done' = sd.phase;
const flags: boolean[] = [sd.ready, sd.accepting, sd.cancelled, sd.shouldClose(), sd.shouldListen];
const hold: (() => void) | null = sd.holdListener();
hold?.();
sd.on('unlisten', () => console.log('close the listeners'));
declare const req: import('node:http').IncomingMessage;
const job: Promise<number> = sd.track(async () => 1, { parent: req, kind: 'job' });
const n: number = sd.inFlight + sd.elapsed;
const signal: AbortSignal = sd.signal;

const g: Guard | null = sd.guard('http');
if (g !== null) {
  const c: Guard = g.child();
  const ok: boolean = c.release() && g.release() && g.released;
}

const tracked: Promise<number> = sd.track(async (s: AbortSignal) => (s.aborted ? 0 : 1));
const tracked2: Promise<string> = sd.track(Promise.resolve('x'), { kind: 'job' });

sd.onClose('db', async () => {}, { order: 1, timeout: 500 }).onClose('logs', () => {});

sd.on('done', (report: Report) => {
  const code: number = report.exit_code;
  const forced: Report['forced'] = report.forced;
  for (const h of report.hooks) {
    if (h.outcome.status === 'failed') {
      const m: string = h.outcome.message;
    }
  }
});
sd.on('draining', () => {});

async function later(): Promise<void> {
  await sd.draining;
  await sd.quiescing;
  await sd.closing;
  const r: Report = await sd.done;
  const at: number | null = sd.reachedAt('closing');
  await sd.advanceAsync(10);
}

const server = http.createServer((req, res) => res.end());
const a = sd.attach(server, { readinessPath: '/readyz', kind: 'http', onRefused: (req) => void req.headers });
const s: http.Server = a.server;
const refused: number = a.stats.refused + a.stats.connectionsDestroyed + a.connections;
a.detach();
sd.attach(http2.createServer());
const sio = { engine: {}, of: (name: string) => name };
const sioAttachment: LongLivedAttachment = sd.attachSocketIo(sio, { kind: 'socket.io', reconnect: false });
sd.attachSocketIo(sio, { reconnect: true });
sd.attachSocketIo(sio);

sd.trigger('deploy').trigger({ kind: 'fatal', detail: 'oom' }).trigger(new Error('boom'));
const name: string = signalName(15);

// @ts-expect-error: unknown strategy
new Shutdown({ closeStrategy: 'sometimes' });
// @ts-expect-error: durations are numbers of milliseconds
new Shutdown({ drainTimeout: '10s' });
// @ts-expect-error: a preset is one of the named platforms
new Shutdown({ preset: 'k8s' });
// @ts-expect-error: env is a boolean
new Shutdown({ env: 'SHUTDOWN_' });
// @ts-expect-error: a hook is a function
sd.onClose('x', 42);
// @ts-expect-error: reconnect is a boolean
sd.attachSocketIo(sio, { reconnect: 'yes' });

export { phase, flags, n, signal, tracked, tracked2, later, refused, name, sioAttachment };
