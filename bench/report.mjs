// Combines the warden-bench results of one bench/token.sh run into a table (stdout) and
// one JSON report. Usage: node bench/report.mjs WORK_DIR OUT_FILE, with the run's settings
// in the environment (set by token.sh). Exit status 4: a target from issue 3 was missed.

import fs from 'node:fs';
import os from 'node:os';

const [work, out] = process.argv.slice(2);
const env = process.env;
const rounds = Number(env.ROUNDS || 1);
// Each cell's median-throughput round (the upper median for an even count), with every
// round's throughput beside it.
const read = (scenario, server) => {
  const all = [];
  for (let i = 1; i <= rounds; i += 1) {
    all.push(JSON.parse(fs.readFileSync(`${work}/${scenario}-${server}-${i}.json`, 'utf8')));
  }
  const sorted = [...all].sort((a, b) => a.throughput_rps - b.throughput_rps);
  return { ...sorted[Math.floor(sorted.length / 2)], rounds_throughput_rps: all.map((r) => r.throughput_rps) };
};
const r2 = (x) => Math.round(x * 100) / 100;
const cpuModel = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1] || 'unknown';

const SCENARIOS = ['token', 'introspect'];
const results = {};
for (const s of SCENARIOS) {
  const w = read(s, 'warden');
  const o = read(s, 'oidc-provider');
  results[s] = {
    warden: w,
    oidc_provider: o,
    ratio_warden_over_oidc_provider: {
      throughput: r2(w.throughput_rps / o.throughput_rps),
      p50_latency: r2(w.latency_ms.p50 / o.latency_ms.p50),
      p99_latency: r2(w.latency_ms.p99 / o.latency_ms.p99),
      requests_per_server_cpu_s: w.requests_per_server_cpu_s && o.requests_per_server_cpu_s
        ? r2(w.requests_per_server_cpu_s / o.requests_per_server_cpu_s) : null,
    },
  };
}

const tok = results.token;
const targets = {
  token_throughput_ratio_min: 5,
  warden_token_p99_ms_max: 10,
  token_throughput_ratio_met: tok.ratio_warden_over_oidc_provider.throughput >= 5,
  warden_token_p99_met: tok.warden.latency_ms.p99 < 10,
};

const report = {
  benchmark: 'token',
  date: new Date().toISOString(),
  command: 'bash bench/token.sh',
  config: {
    duration: env.DURATION,
    warmup: env.WARMUP,
    prewarm_per_server_and_scenario: env.PREWARM,
    concurrency: Number(env.CONCURRENCY),
    load_generator_threads: Number(env.BENCH_THREADS),
    rounds,
  },
  versions: {
    warden: env.WARDEN_REV,
    warden_worktree_dirty: env.WARDEN_DIRTY === 'true',
    oidc_provider: env.OIDC_VERSION,
    node_for_oidc_provider: env.NODE_VERSION,
  },
  machine: {
    cpus: os.cpus().length,
    cpu_model: cpuModel,
    loadavg_before: env.LOAD_BEFORE,
    loadavg_after: os.loadavg().map(r2).join(' '),
  },
  notes: [
    'Warden: release build, `warden serve`, SQLite in a fresh temp data dir, default config (ES256 JWT, one audit event committed per token).',
    'oidc-provider: one Node.js process (NODE_ENV=production), default in-memory adapter, ES256 JWT access tokens for the resource.',
    'oidc-provider refuses to introspect JWT access tokens, so its introspect scenario introspects an opaque token (in-memory lookup); Warden introspects its JWT (client auth, signature, revocation list).',
    'Both servers and the load generator share this machine: cpu_cores_used says who used the CPU during each window (machine = every process, other agents included).',
  ],
  results,
  targets,
  run_seconds_before_report: Number(env.ELAPSED),
};
fs.writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);

const f = (x, d = 2) => (x === null || x === undefined ? '-' : Number(x).toFixed(d));
const row = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(34) : String(c).padStart(9))).join(' ');
console.log('');
const roundsNote = rounds > 1 ? `, median of ${rounds} interleaved rounds` : '';
console.log(`Token benchmark: concurrency ${env.CONCURRENCY}, ${env.PREWARM} prewarm, then ${env.WARMUP} warm-up + ${env.DURATION} per row${roundsNote}; ${report.machine.cpus} CPUs (${cpuModel})`);
console.log(row(['scenario / server', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'errors', 'req/cpu-s', 'srv cpu', 'gen cpu', 'box cpu']));
for (const s of SCENARIOS) {
  const lines = [['warden', results[s].warden], [`oidc-provider ${env.OIDC_VERSION}`, results[s].oidc_provider]];
  for (const [name, r] of lines) {
    const c = r.cpu_cores_used;
    console.log(row([`${s} / ${name}`, f(r.throughput_rps, 0), f(r.latency_ms.p50), f(r.latency_ms.p90),
      f(r.latency_ms.p99), f(r.latency_ms.max), r.errors, f(r.requests_per_server_cpu_s, 0), f(c.server), f(c.load_generator), f(c.machine)]));
  }
  const q = results[s].ratio_warden_over_oidc_provider;
  console.log(row([`${s} / warden ÷ oidc-provider`, `${f(q.throughput)}x`, `${f(q.p50_latency)}x`, '', `${f(q.p99_latency)}x`, '', '',
    q.requests_per_server_cpu_s === null ? '-' : `${f(q.requests_per_server_cpu_s)}x`]));
}
if (rounds > 1) {
  for (const s of SCENARIOS) {
    console.log(`${s} req/s by round: warden ${results[s].warden.rounds_throughput_rps.map((x) => f(x, 0)).join(', ')}; oidc-provider ${results[s].oidc_provider.rounds_throughput_rps.map((x) => f(x, 0)).join(', ')}`);
  }
}
console.log('(req/cpu-s: requests per CPU-second of the server process; cpu columns: cores busy during the window for the server, the load generator and the whole machine)');
console.log('');
const mark = (ok) => (ok ? 'MET' : 'MISSED');
console.log(`Targets (issue 3): Warden token throughput >= 5x oidc-provider: ${mark(targets.token_throughput_ratio_met)} (${f(tok.ratio_warden_over_oidc_provider.throughput)}x); Warden token p99 < 10 ms: ${mark(targets.warden_token_p99_met)} (${f(tok.warden.latency_ms.p99)} ms)`);
console.log(`Load average before: ${report.machine.loadavg_before}; after: ${report.machine.loadavg_after}. Run time so far: ${env.ELAPSED} s.`);
console.log(`Wrote ${out}`);
process.exit(targets.token_throughput_ratio_met && targets.warden_token_p99_met ? 0 : 4);
