// Combines the results of one bench/gateway.sh run into a table (stdout) and one JSON
// report. Usage: node bench/gateway-report.mjs WORK_DIR OUT_FILE, with the run's settings
// in the environment (set by gateway.sh). Exit status 4: a target from issue 5 was missed.

import fs from 'node:fs';
import os from 'node:os';

const [work, out] = process.argv.slice(2);
const env = process.env;
const rounds = Number(env.ROUNDS || 1);
const load = (file) => JSON.parse(fs.readFileSync(`${work}/${file}.json`, 'utf8'));
// Each closed-loop cell's median-throughput round (the upper median for an even count),
// with every round's throughput beside it.
const closed = (way) => {
  const all = [];
  for (let i = 1; i <= rounds; i += 1) all.push(load(`${way}-${i}`));
  const sorted = [...all].sort((a, b) => a.throughput_rps - b.throughput_rps);
  return { ...sorted[Math.floor(sorted.length / 2)], rounds_throughput_rps: all.map((r) => r.throughput_rps) };
};
const r2 = (x) => Math.round(x * 100) / 100;
const r3 = (x) => Math.round(x * 1000) / 1000;
const cpuModel = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1] || 'unknown';

const WAYS = ['direct', 'proxy', 'gateway'];
const closedLoop = Object.fromEntries(WAYS.map((w) => [w, closed(w)]));
const fixedRate = Object.fromEntries(WAYS.map((w) => [w, load(`${w}-rate`)]));
const validation = load('validate');

const g = closedLoop.gateway;
const p = closedLoop.proxy;
const d = closedLoop.direct;
// The same ratio within each round: the two cells ran back to back, so a change in what
// else the machine was doing between rounds cancels out.
const perRound = [];
for (let i = 0; i < rounds; i += 1) {
  perRound.push(r3(g.rounds_throughput_rps[i] / p.rounds_throughput_rps[i]));
}
const ratios = {
  gateway_over_proxy_throughput: r3(g.throughput_rps / p.throughput_rps),
  gateway_over_proxy_throughput_by_round: perRound,
  proxy_over_direct_throughput: r3(p.throughput_rps / d.throughput_rps),
  gateway_over_direct_throughput: r3(g.throughput_rps / d.throughput_rps),
  gateway_over_proxy_requests_per_server_cpu_s: g.requests_per_server_cpu_s && p.requests_per_server_cpu_s
    ? r3(g.requests_per_server_cpu_s / p.requests_per_server_cpu_s) : null,
};
const added = (way) => ({
  p50_ms: r3(fixedRate[way].latency_ms.p50 - fixedRate.direct.latency_ms.p50),
  p99_ms: r3(fixedRate[way].latency_ms.p99 - fixedRate.direct.latency_ms.p99),
});
const addedAtRate = { gateway: added('gateway'), proxy: added('proxy') };

const targets = {
  gateway_over_proxy_throughput_min: 0.85,
  gateway_added_p50_ms_max: 0.25,
  gateway_over_proxy_throughput_met: ratios.gateway_over_proxy_throughput >= 0.85,
  gateway_added_p50_met: addedAtRate.gateway.p50_ms < 0.25,
};

const report = {
  benchmark: 'gateway',
  date: new Date().toISOString(),
  command: 'bash bench/gateway.sh',
  config: {
    duration: env.DURATION,
    warmup: env.WARMUP,
    concurrency: Number(env.CONCURRENCY),
    fixed_rate_rps: Number(env.RATE),
    load_generator_threads: Number(env.BENCH_THREADS),
    rounds,
  },
  versions: { warden: env.WARDEN_REV, warden_worktree_dirty: env.WARDEN_DIRTY === 'true' },
  machine: {
    cpus: os.cpus().length,
    cpu_model: cpuModel,
    loadavg_before: env.LOAD_BEFORE,
    loadavg_after: os.loadavg().map(r2).join(' '),
  },
  notes: [
    'Request: one MCP tools/call (notes_list, no arguments) as JSON-RPC over Streamable HTTP, in a session opened once per cell, with the same Authorization: Bearer token in all three ways (only the gateway checks it).',
    'direct: the demo MCP server (warden demo-upstream). proxy: warden-bench proxy, a bare pooled hyper reverse proxy with no checks. gateway: warden serve, /mcp/bench, release build, SQLite in a fresh temp data dir, audit on.',
    'closed_loop: capacity at the given concurrency. fixed_rate: open loop at the given rate; added latency is the difference of percentiles against direct in the same run.',
    'Everything shares this machine: cpu_cores_used says who used the CPU during each window (machine = every process, other work included).',
  ],
  results: { closed_loop: closedLoop, fixed_rate: fixedRate, token_validation: validation },
  ratios,
  added_latency_at_fixed_rate_ms: addedAtRate,
  targets,
  run_seconds_before_report: Number(env.ELAPSED),
};
fs.writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);

const f = (x, dp = 2) => (x === null || x === undefined ? '-' : Number(x).toFixed(dp));
const signed = (x, dp = 3) => `${x >= 0 ? '+' : ''}${f(x, dp)}`;
const row = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(28) : String(c).padStart(9))).join(' ');
const header = row(['cell', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'errors', 'req/cpu-s', 'srv cpu', 'gen cpu', 'box cpu']);
const line = (name, r) => {
  const c = r.cpu_cores_used;
  return row([name, f(r.throughput_rps, 0), f(r.latency_ms.p50, 3), f(r.latency_ms.p90, 3), f(r.latency_ms.p99, 3),
    f(r.latency_ms.max), r.errors, f(r.requests_per_server_cpu_s, 0), f(c.server), f(c.load_generator), f(c.machine)]);
};
console.log('');
const roundsNote = rounds > 1 ? `, median of ${rounds} interleaved rounds` : '';
console.log(`Gateway benchmark: MCP tools/call, ${env.WARMUP} warm-up + ${env.DURATION} per row${roundsNote}; ${report.machine.cpus} CPUs (${cpuModel})`);
console.log(`Closed loop, concurrency ${env.CONCURRENCY}:`);
console.log(header);
for (const w of WAYS) console.log(line(w, closedLoop[w]));
console.log(`  gateway / proxy throughput ${f(ratios.gateway_over_proxy_throughput)}x; proxy / direct ${f(ratios.proxy_over_direct_throughput)}x; gateway / direct ${f(ratios.gateway_over_direct_throughput)}x; gateway / proxy req/cpu-s ${f(ratios.gateway_over_proxy_requests_per_server_cpu_s)}x`);
if (rounds > 1) {
  console.log(`  req/s by round: ${WAYS.map((w) => `${w} ${closedLoop[w].rounds_throughput_rps.map((x) => f(x, 0)).join(', ')}`).join('; ')}`);
  console.log(`  gateway / proxy throughput by round: ${perRound.map((x) => `${f(x)}x`).join(', ')}`);
}
console.log(`Fixed rate, ${env.RATE} req/s over ${env.CONCURRENCY} connections (open loop):`);
console.log(header);
for (const w of WAYS) console.log(line(w, fixedRate[w]));
console.log(`  added over direct: gateway p50 ${signed(addedAtRate.gateway.p50_ms)} ms, p99 ${signed(addedAtRate.gateway.p99_ms)} ms; proxy p50 ${signed(addedAtRate.proxy.p50_ms)} ms, p99 ${signed(addedAtRate.proxy.p99_ms)} ms`);
const v = validation;
console.log(`Token validation (in-process, ${v.tokens} ES256 tokens): cold p50 ${f(v.cold_us.p50, 1)} µs (p99 ${f(v.cold_us.p99, 1)}), cached p50 ${f(v.cached_us.p50, 2)} µs (p99 ${f(v.cached_us.p99, 2)}), ${f(v.cold_over_cached, 0)}x; first upstream assertion p50 ${f(v.assertion_sign_us.p50, 1)} µs, reused ${f(v.assertion_reuse_us.p50, 2)} µs`);
console.log('(req/cpu-s: requests per CPU-second of the server process; cpu columns: cores busy during the window for the server, the load generator and the whole machine)');
console.log('');
const mark = (ok) => (ok ? 'MET' : 'MISSED');
console.log(`Targets (issue 5): gateway throughput >= 85% of the bare proxy: ${mark(targets.gateway_over_proxy_throughput_met)} (${f(ratios.gateway_over_proxy_throughput * 100, 1)}%); added p50 at ${env.RATE} req/s < 0.25 ms: ${mark(targets.gateway_added_p50_met)} (${signed(addedAtRate.gateway.p50_ms)} ms)`);
console.log(`Load average before: ${report.machine.loadavg_before}; after: ${report.machine.loadavg_after}. Run time so far: ${env.ELAPSED} s.`);
console.log(`Wrote ${out}`);
process.exit(targets.gateway_over_proxy_throughput_met && targets.gateway_added_p50_met ? 0 : 4);
