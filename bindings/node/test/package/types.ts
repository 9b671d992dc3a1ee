// The type test of scripts/package-test.sh: compiled with `tsc --noEmit` against the
// installed package's types (index.d.ts), as a user's TypeScript project would.
import * as http from 'node:http';
import { Shutdown, signalName, type Guard, type Report, type ShutdownOptions } from 'libshutdown';

const options: ShutdownOptions = { drainDelay: 5000, announceProbes: 2, closeStrategy: 'gradual', signals: ['SIGTERM'] };
const shutdown = new Shutdown(options);
const stop: () => void = shutdown.listenSignals();
stop();

const server = http.createServer((_req, res) => res.end('ok'));
const attachment = shutdown.attach(server, { readinessPath: '/readyz' });
const destroyed: number = attachment.stats.connectionsDestroyed;
attachment.detach();

const g: Guard | null = shutdown.guard('job');
if (g !== null) g.release();
shutdown.onClose('db pool', async () => {}, { order: 0, timeout: 2000 });
const done: Promise<Report> = shutdown.done;
void done.then((r) => r.exit_code + r.aborted + destroyed);
const name: string = signalName(15);
void name;

// @ts-expect-error durations are numbers of milliseconds
new Shutdown({ drainDelay: '5s' });
// @ts-expect-error not an option
new Shutdown({ drainTimout: 1000 });
