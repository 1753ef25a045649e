// pulse comparison page: runs each transport against the live counter and shows what it cost.
//
// Everything measured about bytes comes from the server's wire accounting (/api/stats per
// session); the page only counts what it can see exactly itself: updates, id gaps, answers that
// brought nothing new, and latency (receipt time minus the snapshot's change time).
//
// Errors seen by the page (uncaught errors, unhandled rejections, CSP violations, console.error)
// are collected in window.__pulseErrors so a browser test can assert there were none;
// window.__pulse exposes the page id and the runs for poking at from a console.
'use strict';

window.__pulseErrors = [];
(() => {
  const MAX_ERRORS = 100;
  const record = (text) => {
    if (window.__pulseErrors.length < MAX_ERRORS) window.__pulseErrors.push(String(text));
  };
  window.addEventListener('error', (e) => {
    record(`error: ${e.message || e.type} at ${e.filename || '?'}:${e.lineno || 0}`);
  });
  window.addEventListener('unhandledrejection', (e) => {
    record(`unhandled rejection: ${e.reason && e.reason.stack ? e.reason.stack : e.reason}`);
  });
  document.addEventListener('securitypolicyviolation', (e) => {
    record(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
  });
  const consoleError = console.error.bind(console);
  console.error = (...args) => {
    record(args.map(String).join(' '));
    consoleError(...args);
  };
})();

(() => {
  // ---------------------------------------------------------------- constants

  const MODES = ['poll', 'etag', 'longpoll', 'sse', 'ws'];
  const LABEL = {
    poll: 'Polling',
    etag: 'Polling + ETag',
    longpoll: 'Long polling',
    sse: 'SSE',
    ws: 'WebSocket',
  };
  /** Rows kept in the request/event log (oldest dropped first). */
  const LOG_LIMIT = 200;
  /** How often running modes' wire counters are read from /api/stats. */
  const STATS_EVERY_MS = 1000;
  /** Delay before the last stats read of a stopped mode, so its closing bytes are in. */
  const FINAL_STATS_DELAY_MS = 400;
  /** Points kept per chart series; older points are dropped. */
  const SERIES_LIMIT = 900;
  /** Latency samples kept per run for percentiles (a long run at 10 changes/s fits). */
  const LATENCY_LIMIT = 100000;
  /** Window of the count chart. */
  const COUNT_WINDOW_MS = 120000;
  /** Pause before retrying a failed request or a closed socket. */
  const RETRY_MS = 1000;
  const SVGNS = 'http://www.w3.org/2000/svg';

  // ---------------------------------------------------------------- identity

  const pageId = randomId(12);
  const sessionOf = (mode) => `${pageId}-${mode}`;

  function randomId(n) {
    const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
    const bytes = new Uint8Array(n);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
  }

  // ---------------------------------------------------------------- dom helpers

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  // ---------------------------------------------------------------- formatting

  const nf0 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const nf1 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 });
  const nf2 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2, minimumFractionDigits: 2 });

  function fmtBytes(n) {
    if (n === null || n === undefined || !Number.isFinite(n)) return '—';
    if (Math.abs(n) < 1000) return `${nf0.format(n)} B`;
    if (Math.abs(n) < 1e6) return `${nf1.format(n / 1e3)} kB`;
    if (Math.abs(n) < 1e9) return `${nf2.format(n / 1e6)} MB`;
    return `${nf2.format(n / 1e9)} GB`;
  }
  function fmtMs(n) {
    if (n === null || n === undefined || !Number.isFinite(n)) return '—';
    if (Math.abs(n) < 10000) return `${nf0.format(n)} ms`;
    return `${nf1.format(n / 1000)} s`;
  }
  function fmtSeconds(ms) {
    if (!Number.isFinite(ms)) return '—';
    const s = ms / 1000;
    if (s < 60) return `${nf1.format(s)} s`;
    const m = Math.floor(s / 60);
    return `${m} min ${String(Math.floor(s % 60)).padStart(2, '0')} s`;
  }
  function fmtInt(n) {
    return Number.isFinite(n) ? nf0.format(n) : '—';
  }
  function fmtClock(t) {
    const d = new Date(t);
    const hms = d.toLocaleTimeString('en-GB', { hour12: false });
    return `${hms}.${String(d.getMilliseconds()).padStart(3, '0')}`;
  }
  function fmtRatio(r) {
    return r >= 10 ? nf0.format(r) : nf1.format(r);
  }
  const byteLength = (text) => new TextEncoder().encode(text).length;

  // ---------------------------------------------------------------- settings

  const intervalInput = $('poll-interval');
  const timeoutInput = $('longpoll-timeout');

  function readNumber(input, min, max, fallback) {
    const v = Number(input.value);
    const ok = input.value !== '' && Number.isFinite(v) && v >= min && v <= max;
    input.setAttribute('aria-invalid', ok ? 'false' : 'true');
    return ok ? v : fallback;
  }
  const pollInterval = () => readNumber(intervalInput, 50, 60000, 2000);
  const longpollTimeout = () => Math.round(readNumber(timeoutInput, 1, 120, 30));

  // ---------------------------------------------------------------- runs

  /** mode -> run; a run exists once a mode has been started, until results are cleared. */
  const runs = new Map();
  let statsTimer = null;
  let statsInFlight = false;
  let compareTimer = null;
  let renderQueued = false;
  /** Newest snapshot seen by any mode, for the big counter. */
  let shown = null;
  /** [receipt time, count] of every new id first seen by any mode. */
  const countSeries = [];

  function newRun(mode, baseline) {
    return {
      mode,
      ctrl: new AbortController(),
      running: false,
      startedAt: 0,
      stoppedAt: 0,
      clientRequests: 0,
      updates: 0,
      missed: 0,
      wasted: 0,
      lastId: null,
      etag: null,
      /** Every latency of the run, kept sorted for percentiles (binary insertion). */
      latSorted: [],
      latSeries: [],
      bytesSeries: [],
      baseline,
      wire: null,
      finalPending: false,
      problem: null,
      es: null,
      ws: null,
    };
  }

  const alive = (run) => run.running && !run.ctrl.signal.aborted && runs.get(run.mode) === run;
  const isAbort = (err) => err && (err.name === 'AbortError' || err.name === 'TimeoutError');

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done);
    });
  }

  /**
   * Takes one snapshot received by a run. Returns true when it carried a new id.
   * The first snapshot of a run is its starting point: counted as an update but not timed,
   * since its change happened before the run began.
   */
  function accept(run, snap) {
    const now = Date.now();
    if (!snap || !Number.isFinite(snap.id) || !Number.isFinite(snap.count)) {
      log(run.mode, 'malformed snapshot ignored', 'error');
      return false;
    }
    if (run.lastId !== null && snap.id === run.lastId) return false;
    if (run.lastId !== null && snap.id < run.lastId) {
      log(run.mode, `id went back ${run.lastId} → ${snap.id} (server restarted?)`, 'error');
      shown = null;
    } else if (run.lastId !== null && snap.id > run.lastId + 1) {
      run.missed += snap.id - run.lastId - 1;
    }
    const first = run.lastId === null;
    run.lastId = snap.id;
    run.updates += 1;
    if (!first) {
      const changedAt = Date.parse(snap.timestamp);
      if (Number.isFinite(changedAt)) {
        const latency = now - changedAt;
        if (run.latSorted.length < LATENCY_LIMIT) insertSorted(run.latSorted, latency);
        pushBounded(run.latSeries, [now, latency]);
      }
    }
    showSnapshot(snap, run.mode, now);
    scheduleRender();
    return true;
  }

  function insertSorted(sorted, value) {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid] <= value) lo = mid + 1;
      else hi = mid;
    }
    sorted.splice(lo, 0, value);
  }

  function pushBounded(arr, item, limit = SERIES_LIMIT) {
    arr.push(item);
    if (arr.length > limit) arr.splice(0, arr.length - limit);
  }

  // ---------------------------------------------------------------- transports

  const api = (path, mode, extra = '') =>
    `${path}?session=${encodeURIComponent(sessionOf(mode))}${extra}`;

  async function runPolling(run, withEtag) {
    const { mode } = run;
    const signal = run.ctrl.signal;
    while (alive(run)) {
      const began = performance.now();
      const headers = {};
      if (withEtag && run.etag) headers['If-None-Match'] = run.etag;
      run.clientRequests += 1;
      try {
        const res = await fetch(api('/api/count', mode), { cache: 'no-store', headers, signal });
        const rtt = Math.round(performance.now() - began);
        if (res.status === 304) {
          await res.arrayBuffer();
          if (!alive(run)) return;
          run.wasted += 1;
          log(mode, `304 Not Modified · ${run.etag} · ${rtt} ms`, 'waste');
        } else if (res.ok) {
          const text = await res.text();
          if (!alive(run)) return;
          const etag = res.headers.get('ETag');
          if (etag) run.etag = etag;
          const snap = JSON.parse(text);
          const fresh = accept(run, snap);
          if (!fresh) run.wasted += 1;
          log(
            mode,
            `200 count=${snap.count} id=${snap.id} · ${byteLength(text)} B body · ${rtt} ms${fresh ? '' : ' · nothing new'}`,
            fresh ? '' : 'waste',
          );
        } else {
          await res.arrayBuffer();
          if (!alive(run)) return;
          log(mode, `${res.status} ${res.statusText}`.trim(), 'error');
        }
        setProblem(run, null);
      } catch (err) {
        if (isAbort(err) || !alive(run)) return;
        setProblem(run, 'retrying');
        log(mode, `request failed: ${err.message}`, 'error');
      }
      scheduleRender();
      const wait = pollInterval() - (performance.now() - began);
      await sleep(Math.max(0, wait), signal);
    }
  }

  async function runLongPolling(run) {
    const { mode } = run;
    const signal = run.ctrl.signal;
    while (alive(run)) {
      const since = run.lastId;
      const timeout = longpollTimeout();
      const extra = `${since === null ? '' : `&since=${since}`}&timeout=${timeout}`;
      const began = performance.now();
      run.clientRequests += 1;
      try {
        const res = await fetch(api('/api/longpoll', mode, extra), { cache: 'no-store', signal });
        const held = Math.round(performance.now() - began);
        const text = await res.text();
        if (!alive(run)) return;
        if (res.ok) {
          const snap = JSON.parse(text);
          const fresh = accept(run, snap);
          if (!fresh) run.wasted += 1;
          const what = fresh ? `count=${snap.count} id=${snap.id}` : `timeout, same id=${snap.id}`;
          log(mode, `200 ${what} · ${byteLength(text)} B body · held ${fmtMs(held)}`, fresh ? '' : 'waste');
          setProblem(run, null);
        } else {
          log(mode, `${res.status} ${res.statusText}`.trim(), 'error');
          setProblem(run, 'retrying');
          await sleep(RETRY_MS, signal);
        }
      } catch (err) {
        if (isAbort(err) || !alive(run)) return;
        setProblem(run, 'retrying');
        log(mode, `request failed: ${err.message}`, 'error');
        await sleep(RETRY_MS, signal);
      }
      scheduleRender();
    }
  }

  function runSse(run) {
    const { mode } = run;
    const es = new EventSource(api('/api/stream', mode));
    run.es = es;
    run.clientRequests += 1;
    let opened = false;
    es.addEventListener('open', () => {
      if (!alive(run)) return;
      if (opened) run.clientRequests += 1;
      opened = true;
      setProblem(run, null);
      log(mode, 'stream open · text/event-stream');
    });
    es.addEventListener('message', (e) => {
      if (!alive(run)) return;
      let snap;
      try {
        snap = JSON.parse(e.data);
      } catch {
        log(mode, 'event with unreadable data', 'error');
        return;
      }
      const fresh = accept(run, snap);
      log(
        mode,
        `event id=${e.lastEventId || snap.id} count=${snap.count} · ${byteLength(e.data)} B data${fresh ? '' : ' · repeat'}`,
        fresh ? '' : 'waste',
      );
    });
    es.addEventListener('error', () => {
      if (!alive(run)) return;
      if (es.readyState === EventSource.CLOSED) {
        setProblem(run, 'closed');
        log(mode, 'stream closed by the browser; reopening', 'error');
        run.es = null;
        sleep(RETRY_MS, run.ctrl.signal).then(() => {
          if (alive(run)) runSse(run);
        });
      } else {
        setProblem(run, 'reconnecting');
        log(mode, `stream lost; EventSource reconnects with Last-Event-ID ${run.lastId ?? '—'}`, 'error');
      }
    });
  }

  function runWebSocket(run) {
    const { mode } = run;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}${api('/api/ws', mode)}`);
    run.ws = ws;
    run.clientRequests += 1;
    ws.addEventListener('open', () => {
      if (!alive(run)) return;
      setProblem(run, null);
      log(mode, '101 Switching Protocols · socket open');
    });
    ws.addEventListener('message', (e) => {
      if (!alive(run) || typeof e.data !== 'string') return;
      let snap;
      try {
        snap = JSON.parse(e.data);
      } catch {
        log(mode, 'message with unreadable data', 'error');
        return;
      }
      const fresh = accept(run, snap);
      log(
        mode,
        `message id=${snap.id} count=${snap.count} · ${byteLength(e.data)} B text${fresh ? '' : ' · repeat'}`,
        fresh ? '' : 'waste',
      );
    });
    ws.addEventListener('close', (e) => {
      if (run.ws === ws) run.ws = null;
      if (!alive(run)) return;
      setProblem(run, 'reconnecting');
      log(mode, `socket closed (${e.code}); reconnecting`, 'error');
      sleep(RETRY_MS, run.ctrl.signal).then(() => {
        if (alive(run)) runWebSocket(run);
      });
    });
  }

  function closeWebSocket(ws) {
    // Closing a socket that is still connecting makes the browser log an error; wait for it.
    if (ws.readyState === WebSocket.CONNECTING) {
      ws.addEventListener('open', () => ws.close(1000, 'stopped'));
    } else if (ws.readyState === WebSocket.OPEN) {
      ws.close(1000, 'stopped');
    }
  }

  function launch(run) {
    const previous = runs.get(run.mode);
    if (previous && previous !== run && previous.running) stop(run.mode);
    runs.set(run.mode, run);
    run.running = true;
    run.startedAt = Date.now();
    setStatus(run.mode);
    log(run.mode, `started · session ${sessionOf(run.mode)}`, 'info');
    switch (run.mode) {
      case 'poll':
        runPolling(run, false);
        break;
      case 'etag':
        runPolling(run, true);
        break;
      case 'longpoll':
        runLongPolling(run);
        break;
      case 'sse':
        runSse(run);
        break;
      case 'ws':
        runWebSocket(run);
        break;
      default:
        throw new Error(`unknown mode ${run.mode}`);
    }
    ensureStatsTimer();
    scheduleRender();
  }

  // ---------------------------------------------------------------- stats (wire accounting)

  const ZERO_WIRE = { requests: 0, bytesIn: 0, bytesOut: 0, payload: 0, events: 0, open: 0, notModified: 0 };
  /** Transports that are not the mode's own traffic: the stats reads and the page itself. */
  const NOT_TRAFFIC = new Set(['stats', 'page']);

  function sumTransports(transports) {
    const sum = { ...ZERO_WIRE };
    for (const [name, t] of Object.entries(transports || {})) {
      if (NOT_TRAFFIC.has(name) || !t) continue;
      sum.requests += Number(t.requests) || 0;
      sum.bytesIn += Number(t.bytes_in) || 0;
      sum.bytesOut += Number(t.bytes_out) || 0;
      sum.payload += Number(t.payload_bytes_out) || 0;
      sum.events += Number(t.events) || 0;
      sum.open += Number(t.open_connections) || 0;
      sum.notModified += Number(t.not_modified) || 0;
    }
    return sum;
  }

  async function fetchStats(session) {
    const q = session ? `?session=${encodeURIComponent(session)}` : '';
    const res = await fetch(`/api/stats${q}`, { cache: 'no-store' });
    if (!res.ok) throw new Error(`/api/stats answered ${res.status}`);
    const body = await res.json();
    showServer(body);
    return body;
  }

  async function readWire(mode) {
    const body = await fetchStats(sessionOf(mode));
    return sumTransports(body.transports);
  }

  function applyWire(run, cur) {
    const b = run.baseline || ZERO_WIRE;
    run.wire = {
      requests: cur.requests - b.requests,
      bytesIn: cur.bytesIn - b.bytesIn,
      bytesOut: cur.bytesOut - b.bytesOut,
      payload: cur.payload - b.payload,
      events: cur.events - b.events,
      notModified: cur.notModified - b.notModified,
      open: cur.open,
    };
    pushBounded(run.bytesSeries, [Date.now(), run.wire.bytesOut]);
  }

  function ensureStatsTimer() {
    if (statsTimer === null) statsTimer = setInterval(statsTick, STATS_EVERY_MS);
  }

  async function statsTick() {
    const active = [...runs.values()].filter((r) => r.running);
    if (active.length === 0) {
      clearInterval(statsTimer);
      statsTimer = null;
      return;
    }
    if (statsInFlight) return;
    statsInFlight = true;
    try {
      await Promise.all(
        active.map(async (run) => {
          try {
            const cur = await readWire(run.mode);
            if (runs.get(run.mode) === run && run.running) applyWire(run, cur);
          } catch (err) {
            log(run.mode, `stats unavailable: ${err.message}`, 'error');
          }
        }),
      );
    } finally {
      statsInFlight = false;
    }
    scheduleRender();
  }

  async function finalStats(run) {
    try {
      const cur = await readWire(run.mode);
      if (runs.get(run.mode) === run) applyWire(run, cur);
    } catch (err) {
      log(run.mode, `final stats unavailable: ${err.message}`, 'error');
    } finally {
      run.finalPending = false;
      setStatus(run.mode);
      scheduleRender();
    }
  }

  // ---------------------------------------------------------------- start / stop / compare

  async function prepare(mode) {
    let baseline = { ...ZERO_WIRE };
    try {
      baseline = await readWire(mode);
    } catch (err) {
      log(mode, `stats unavailable (${err.message}); bytes count from zero`, 'error');
    }
    return newRun(mode, baseline);
  }

  const starting = new Set();

  async function start(mode) {
    if (starting.has(mode) || (runs.get(mode) && runs.get(mode).running)) return;
    starting.add(mode);
    setStatus(mode, 'starting');
    try {
      launch(await prepare(mode));
    } finally {
      starting.delete(mode);
      setStatus(mode);
    }
  }

  function stop(mode) {
    const run = runs.get(mode);
    if (!run || !run.running) return;
    run.running = false;
    run.stoppedAt = Date.now();
    run.ctrl.abort();
    if (run.es) {
      run.es.close();
      run.es = null;
    }
    if (run.ws) {
      closeWebSocket(run.ws);
      run.ws = null;
    }
    run.problem = null;
    run.finalPending = true;
    log(mode, `stopped after ${fmtSeconds(run.stoppedAt - run.startedAt)}`, 'info');
    setTimeout(() => finalStats(run), FINAL_STATS_DELAY_MS);
    setStatus(mode);
    scheduleRender();
  }

  function stopAll() {
    if (compareTimer !== null) {
      clearTimeout(compareTimer);
      compareTimer = null;
    }
    for (const mode of MODES) stop(mode);
  }

  let comparing = false;

  async function compare() {
    const selected = MODES.filter((m) => $(`cmp-${m}`).checked);
    if (selected.length < 2) {
      notice('Tick at least two transports to compare.');
      return;
    }
    if (comparing || starting.size > 0) return;
    comparing = true;
    stopAll();
    runs.clear();
    countSeries.length = 0;
    for (const m of MODES) setStatus(m);
    for (const m of selected) {
      starting.add(m);
      setStatus(m, 'starting');
    }
    // Baselines first, then every transport starts in the same task, so all see the same changes.
    const prepared = await Promise.all(selected.map(prepare));
    for (const m of selected) starting.delete(m);
    comparing = false;
    for (const run of prepared) launch(run);
    const seconds = Number($('compare-duration').value) || 0;
    const names = selected.map((m) => LABEL[m]).join(', ');
    if (seconds > 0) {
      notice(`Comparing ${names} for ${seconds} s.`);
      compareTimer = setTimeout(() => {
        compareTimer = null;
        stopAll();
        notice(`Compare finished after ${seconds} s.`);
      }, seconds * 1000);
    } else {
      notice(`Comparing ${names} until stopped.`);
    }
    scheduleRender();
  }

  function reset() {
    stopAll();
    runs.clear();
    countSeries.length = 0;
    for (const m of MODES) setStatus(m);
    notice('Results cleared.');
    scheduleRender();
  }

  // ---------------------------------------------------------------- derived numbers

  function percentile(sorted, p) {
    if (sorted.length === 0) return null;
    const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[idx];
  }

  function metricsOf(run) {
    const end = run.running ? Date.now() : run.stoppedAt || Date.now();
    const elapsed = run.startedAt ? Math.max(0, end - run.startedAt) : 0;
    const w = run.wire;
    const requests = w ? w.requests : run.clientRequests;
    const sorted = run.latSorted;
    const bytesDown = w ? w.bytesOut : null;
    return {
      elapsed,
      requests,
      rps: elapsed > 0 ? requests / (elapsed / 1000) : null,
      updates: run.updates,
      missed: run.missed,
      wasted: run.wasted,
      bytes_up: w ? w.bytesIn : null,
      bytes_down: bytesDown,
      bytes_overhead: w ? w.bytesOut - w.payload : null,
      bytes_payload: w ? w.payload : null,
      bytes_per_update: w && run.updates > 0 ? bytesDown / run.updates : null,
      lat_p50: percentile(sorted, 50),
      lat_p95: percentile(sorted, 95),
      lat_max: sorted.length ? sorted[sorted.length - 1] : null,
      open: w ? w.open : null,
    };
  }

  /** key, label, formatter, which direction is better (for highlighting), help text. */
  const ROWS = [
    ['elapsed', 'Elapsed', fmtSeconds, null, 'Time since this mode started'],
    ['requests', 'Requests', fmtInt, null, 'HTTP requests the server received for this mode (a stream or socket is one)'],
    ['rps', 'Requests / s', (v) => (v === null ? '—' : nf2.format(v)), null, 'Requests divided by elapsed time'],
    ['updates', 'Updates received', fmtInt, null, 'Snapshots with a new id, the first included'],
    ['missed', 'Updates missed', fmtInt, 'low', 'Changes never seen: gaps in the snapshot id'],
    ['wasted', 'Wasted requests', fmtInt, 'low', 'Answers that brought nothing new: same id, 304, long-poll timeout'],
    ['bytes_up', 'Bytes up', fmtBytes, null, 'Request bytes the server read from this page'],
    ['bytes_down', 'Bytes down', fmtBytes, 'low', 'Every byte the server wrote: status lines, headers, framing, bodies'],
    ['bytes_overhead', '↳ headers & framing', fmtBytes, null, 'Bytes down minus payload'],
    ['bytes_payload', '↳ payload', fmtBytes, null, 'JSON bodies, SSE frames, WebSocket messages'],
    ['bytes_per_update', 'Bytes down per update', fmtBytes, 'low', 'Bytes down divided by updates received'],
    ['lat_p50', 'Latency p50', fmtMs, 'low', 'Receipt time minus the time the count changed'],
    ['lat_p95', 'Latency p95', fmtMs, 'low', ''],
    ['lat_max', 'Latency max', fmtMs, null, ''],
    ['open', 'Open connections', fmtInt, null, 'Connections the server holds open for this mode right now'],
  ];

  // ---------------------------------------------------------------- rendering

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      render();
    });
  }

  function buildTable() {
    const head = $('metrics-head');
    for (const mode of MODES) {
      head.append(
        el(
          'th',
          { scope: 'col', id: `col-${mode}`, 'data-testid': `col-${mode}`, class: `col mode-${mode}`, hidden: true },
          el('span', { class: 'swatch', 'aria-hidden': 'true' }),
          el('span', { class: 'col-name', text: LABEL[mode] }),
          el('span', { class: 'col-state', id: `col-state-${mode}`, 'data-testid': `col-state-${mode}` }),
        ),
      );
    }
    const body = $('metrics-body');
    for (const [key, label, , , help] of ROWS) {
      const row = el('tr', { 'data-row': key, class: key.startsWith('bytes_') && label.startsWith('↳') ? 'sub' : '' });
      row.append(el('th', { scope: 'row', title: help || null }, label));
      for (const mode of MODES) {
        row.append(
          el('td', {
            id: `m-${mode}-${key}`,
            'data-testid': `m-${mode}-${key}`,
            'data-value': '',
            class: `mode-${mode}`,
            hidden: true,
            text: '—',
          }),
        );
      }
      body.append(row);
    }
  }

  function render() {
    const visible = MODES.filter((m) => runs.has(m));
    $('results-empty').hidden = visible.length > 0;
    $('table-wrap').hidden = visible.length === 0;
    // Two or fewer columns read better close to their labels than spread over the full width.
    $('table-wrap').classList.toggle('narrow', visible.length <= 2);
    const metrics = {};
    for (const mode of MODES) {
      const run = runs.get(mode);
      const show = Boolean(run);
      $(`col-${mode}`).hidden = !show;
      for (const [key] of ROWS) $(`m-${mode}-${key}`).hidden = !show;
      if (!run) continue;
      metrics[mode] = metricsOf(run);
      // "finishing" until the last stats read after a stop is in; the numbers are final after.
      const state = run.running ? 'running' : run.finalPending ? 'finishing' : 'finished';
      const stateEl = $(`col-state-${mode}`);
      stateEl.textContent = state;
      stateEl.dataset.state = state;
    }
    for (const [key, , fmt, better] of ROWS) {
      const values = visible.map((m) => metrics[m][key]).filter((v) => v !== null && Number.isFinite(v));
      // The best value is highlighted when it differs from the others as displayed.
      let best = null;
      if (better && visible.length > 1 && values.length > 1) {
        const top = better === 'low' ? Math.min(...values) : Math.max(...values);
        best = fmt(top);
        if (values.every((v) => fmt(v) === best)) best = null;
      }
      for (const mode of visible) {
        const v = metrics[mode][key];
        const cell = $(`m-${mode}-${key}`);
        const text = v === null ? '—' : fmt(v);
        if (cell.textContent !== text) cell.textContent = text;
        cell.dataset.value = v === null ? '' : String(Math.round(v * 100) / 100);
        cell.classList.toggle('best', best !== null && v !== null && text === best);
      }
    }
    renderVerdict(visible, metrics);
    renderModeCharts(visible);
    renderCountChart();
  }

  function renderVerdict(visible, metrics) {
    const box = $('verdict');
    const withData = visible.filter(
      (m) => metrics[m].bytes_per_update !== null && metrics[m].updates > 0 && metrics[m].bytes_down > 0,
    );
    if (withData.length < 2) {
      box.hidden = true;
      box.replaceChildren();
      return;
    }
    const ranked = [...withData].sort((a, b) => metrics[a].bytes_per_update - metrics[b].bytes_per_update);
    const best = ranked[0];
    const mb = metrics[best];
    const items = [];
    for (const other of ranked.slice(1)) {
      const mo = metrics[other];
      const ratio = mo.bytes_per_update / mb.bytes_per_update;
      const parts = [];
      if (ratio < 1.05) {
        parts.push(strong(LABEL[best]), ' and ', strong(LABEL[other]), ' used about the same bytes per update');
      } else {
        parts.push(
          strong(LABEL[best]),
          ` used ${fmtRatio(ratio)}× fewer bytes per update than `,
          strong(LABEL[other]),
          ` (${fmtBytes(mb.bytes_per_update)} vs ${fmtBytes(mo.bytes_per_update)})`,
        );
      }
      if (mb.lat_p50 !== null && mo.lat_p50 !== null) {
        const diff = mo.lat_p50 - mb.lat_p50;
        if (Math.abs(diff) < 5) parts.push(', with the same freshness at p50');
        else if (diff > 0) parts.push(` and its updates were ${fmtMs(diff)} fresher at p50`);
        else parts.push(` but its updates were ${fmtMs(-diff)} staler at p50`);
      }
      parts.push('.');
      items.push(parts);
    }
    for (const m of withData) {
      const x = metrics[m];
      const changes = x.updates + x.missed;
      const facts = [];
      if (x.missed > 0 && changes > 0) {
        facts.push(`never saw ${fmtInt(x.missed)} of ${fmtInt(changes)} changes (${pct(x.missed, changes)})`);
      }
      if (x.wasted > 0) {
        const asked = Math.max(x.requests, x.wasted);
        facts.push(`got nothing new from ${fmtInt(x.wasted)} of its ${fmtInt(asked)} requests (${pct(x.wasted, asked)})`);
      }
      if (facts.length) items.push([strong(LABEL[m]), ` ${facts.join(' and ')}.`]);
    }
    const noMiss = withData.filter((m) => metrics[m].missed === 0);
    if (noMiss.length > 0 && noMiss.length < withData.length) {
      items.push([...joinNames(noMiss), ' missed no change.']);
    }
    box.replaceChildren(
      el('h3', { text: 'Verdict' }),
      el('ul', {}, ...items.map((parts) => el('li', {}, ...parts))),
    );
    box.hidden = false;
  }

  const strong = (text) => el('strong', { text });
  const pct = (part, whole) => `${nf0.format((100 * part) / whole)}%`;
  function joinNames(modes) {
    const out = [];
    modes.forEach((m, i) => {
      if (i > 0) out.push(i === modes.length - 1 ? ' and ' : ', ');
      out.push(strong(LABEL[m]));
    });
    return out;
  }

  function linePath(points, x0, x1, y0, y1, w, h) {
    const sx = (x) => ((x - x0) / Math.max(1, x1 - x0)) * w;
    const sy = (y) => h - ((y - y0) / Math.max(1e-9, y1 - y0)) * h;
    let d = '';
    points.forEach(([x, y], i) => {
      d += `${i === 0 ? 'M' : 'L'}${sx(x).toFixed(1)} ${sy(y).toFixed(1)}`;
    });
    return d;
  }

  function dotPath(points, x0, x1, y0, y1, w, h) {
    // Zero-length segments with round caps and a non-scaling stroke draw as round dots, even
    // though the chart stretches to its box (preserveAspectRatio="none").
    const sx = (x) => ((x - x0) / Math.max(1, x1 - x0)) * w;
    const sy = (y) => h - ((y - y0) / Math.max(1e-9, y1 - y0)) * h;
    return points.map(([x, y]) => `M${sx(x).toFixed(1)} ${sy(y).toFixed(1)}h0`).join('');
  }

  function gridLines(group, w, h, n) {
    for (let i = 1; i < n; i++) {
      const y = (h / n) * i;
      group.append(svg('line', { x1: 0, x2: w, y1: y, y2: y, class: 'grid', 'vector-effect': 'non-scaling-stroke' }));
    }
  }

  function renderModeCharts(visible) {
    const box = $('mode-charts');
    // One scale for every chart, so heights compare across modes at a glance.
    const all = visible.map((m) => runs.get(m));
    const scale = {
      t0: Math.min(...all.map((r) => r.startedAt || Date.now())),
      t1: Math.max(...all.map((r) => (r.running ? Date.now() : r.stoppedAt || Date.now()))),
      lat: niceCeil(Math.max(100, ...all.flatMap((r) => r.latSeries.map((p) => p[1])))),
      bytes: niceCeil(Math.max(1000, ...all.flatMap((r) => r.bytesSeries.map((p) => p[1])))),
    };
    scale.t1 = Math.max(scale.t1, scale.t0 + 5000);
    for (const mode of MODES) {
      let card = $(`chart-${mode}`);
      if (!runs.has(mode)) {
        if (card) card.remove();
        continue;
      }
      if (!card) {
        card = el(
          'figure',
          { id: `chart-${mode}`, 'data-testid': `chart-${mode}`, class: `mode-chart mode-${mode}` },
          el('figcaption', {}, el('span', { class: 'swatch', 'aria-hidden': 'true' }), LABEL[mode]),
          el(
            'div',
            { class: 'plot' },
            svg('svg', {
              viewBox: '0 0 300 120',
              preserveAspectRatio: 'none',
              class: 'chart',
              role: 'img',
              'aria-label': `${LABEL[mode]}: latency and cumulative bytes down over time`,
            }),
            el('span', { class: 'axis left' }),
            el('span', { class: 'axis right' }),
            el('span', { class: 'axis bottom' }),
          ),
        );
        // Keep cards in mode order.
        const next = MODES.slice(MODES.indexOf(mode) + 1)
          .map((m) => $(`chart-${m}`))
          .find(Boolean);
        box.insertBefore(card, next || null);
      }
      drawModeChart(card, runs.get(mode), scale);
    }
    box.classList.toggle('empty', visible.length === 0);
  }

  function niceCeil(v) {
    const p = 10 ** Math.floor(Math.log10(v));
    const m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
  }

  function drawModeChart(card, run, scale) {
    const W = 300;
    const H = 120;
    const { t0, t1 } = scale;
    const x = (t) => (((t - t0) / Math.max(1, t1 - t0)) * W).toFixed(1);
    const bytes = run.bytesSeries;
    const bytePts = [[run.startedAt || t0, 0], ...bytes];
    const line = linePath(bytePts, t0, t1, 0, scale.bytes, W, H);
    const grid = svg('g');
    gridLines(grid, W, H, 4);
    card.querySelector('svg').replaceChildren(
      grid,
      svg('path', { d: `${line}L${x(bytePts[bytePts.length - 1][0])} ${H}L${x(bytePts[0][0])} ${H}Z`, class: 'bytes-area' }),
      svg('path', { d: line, class: 'bytes-line', 'vector-effect': 'non-scaling-stroke' }),
      svg('path', {
        // A little room below zero so dots at 0 ms stay whole.
        d: dotPath(run.latSeries, t0, t1, -scale.lat * 0.04, scale.lat, W, H),
        class: 'lat-dots',
        'vector-effect': 'non-scaling-stroke',
      }),
    );
    const [left, right, bottom] = card.querySelectorAll('.axis');
    left.textContent = `latency ≤ ${fmtMs(scale.lat)}`;
    right.textContent = `${fmtBytes(bytes.length ? bytes[bytes.length - 1][1] : 0)} down of ${fmtBytes(scale.bytes)}`;
    bottom.textContent = fmtSeconds(t1 - t0);
  }

  function renderCountChart() {
    const chart = $('count-chart');
    const W = 600;
    const H = 160;
    const now = Date.now();
    const t1 = now;
    while (countSeries.length > 1 && countSeries[1][0] < now - COUNT_WINDOW_MS) countSeries.shift();
    // The window grows with the data, from 30 s up to COUNT_WINDOW_MS.
    const first = countSeries.length ? countSeries[0][0] : now;
    const span = Math.min(COUNT_WINDOW_MS, Math.max(30000, Math.ceil((now - first) / 30000) * 30000));
    const t0 = now - span;
    $('count-span').textContent = `last ${fmtSeconds(span).replace('.0 s', ' s').replace(' 00 s', '')}`;
    const pts = countSeries.map(([t, c]) => [Math.max(t, t0), c]);
    const grid = svg('g');
    gridLines(grid, W, H, 4);
    if (pts.length === 0) {
      chart.replaceChildren(grid);
      return;
    }
    // A step line: the count holds its value until the next change, then up to now.
    const steps = [];
    pts.forEach(([t, c], i) => {
      if (i > 0) steps.push([t, pts[i - 1][1]]);
      steps.push([t, c]);
    });
    steps.push([t1, pts[pts.length - 1][1]]);
    const counts = pts.map((p) => p[1]);
    let lo = Math.min(...counts);
    let hi = Math.max(...counts);
    const pad = Math.max(2, (hi - lo) * 0.15);
    lo = Math.max(0, lo - pad);
    hi += pad;
    const d = linePath(steps, t0, t1, lo, hi, W, H);
    chart.replaceChildren(
      grid,
      svg('path', { d: `${d}L${W} ${H}L${((steps[0][0] - t0) / (t1 - t0)) * W} ${H}Z`, class: 'count-area' }),
      svg('path', { d, class: 'count-line', 'vector-effect': 'non-scaling-stroke' }),
    );
    $('count-hi').textContent = fmtInt(Math.round(hi));
    $('count-lo').textContent = fmtInt(Math.round(lo));
  }

  // ---------------------------------------------------------------- counter, server, status

  function showSnapshot(snap, mode, receivedAt) {
    if (shown !== null && snap.id <= shown.id) return;
    shown = snap;
    pushBounded(countSeries, [receivedAt, snap.count], 2000);
    const counter = $('counter');
    counter.textContent = fmtInt(snap.count);
    counter.dataset.value = String(snap.count);
    counter.classList.remove('bump');
    // Restart the highlight animation (reading offsetWidth forces a style flush).
    void counter.offsetWidth;
    counter.classList.add('bump');
    const at = Date.parse(snap.timestamp);
    const time = $('counter-updated');
    time.textContent = Number.isFinite(at) ? fmtClock(at) : String(snap.timestamp);
    time.setAttribute('datetime', String(snap.timestamp));
    $('counter-via').textContent = mode ? `first seen via ${LABEL[mode]}` : 'from /api/stats';
    $('counter-id').textContent = String(snap.id);
  }

  function showServer(body) {
    if (!body || typeof body !== 'object') return;
    const p = body.process || {};
    $('srv-cpu').textContent = Number.isFinite(p.cpu_seconds) ? `${nf2.format(p.cpu_seconds)} s` : '—';
    $('srv-rss').textContent = Number.isFinite(p.rss_bytes) ? fmtBytes(p.rss_bytes) : '—';
    const src = body.source || {};
    const sourceEl = $('srv-source');
    sourceEl.textContent = src.kind ? `${src.kind}${src.healthy === false ? ' · unhealthy' : ''}` : '—';
    sourceEl.classList.toggle('bad', src.healthy === false);
    $('srv-uptime').textContent = Number.isFinite(body.uptime_seconds)
      ? fmtSeconds(body.uptime_seconds * 1000)
      : '—';
  }

  function setProblem(run, problem) {
    if (run.problem === problem) return;
    run.problem = problem;
    setStatus(run.mode);
  }

  function setStatus(mode, forced) {
    const run = runs.get(mode);
    const state = forced || (starting.has(mode) ? 'starting' : run ? (run.running ? run.problem || 'running' : 'stopped') : 'idle');
    const status = $(`status-${mode}`);
    status.textContent = state;
    status.dataset.state = state;
    const btn = $(`btn-${mode}`);
    const running = state !== 'idle' && state !== 'stopped';
    btn.textContent = running ? 'Stop' : 'Start';
    btn.setAttribute('aria-label', `${running ? 'Stop' : 'Start'} ${LABEL[mode]}`);
    btn.classList.toggle('stop', running);
    btn.closest('.mode').classList.toggle('active', running);
  }

  let noticeTimer = null;
  function notice(text) {
    const box = $('notice');
    box.textContent = text;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => {
      box.textContent = '';
    }, 8000);
  }

  // ---------------------------------------------------------------- log

  function log(mode, text, kind = '') {
    const body = $('log');
    const row = el(
      'tr',
      { class: kind ? `log-${kind}` : '' },
      el('td', { class: 'log-time', text: fmtClock(Date.now()) }),
      el('td', { class: 'log-mode' }, el('span', { class: `tag mode-${mode}`, text: LABEL[mode] || mode })),
      el('td', { class: 'log-text', text }),
    );
    body.insertBefore(row, body.firstChild);
    while (body.childElementCount > LOG_LIMIT) body.lastElementChild.remove();
  }

  // ---------------------------------------------------------------- wiring

  function init() {
    buildTable();
    $('log-limit').textContent = String(LOG_LIMIT);
    for (const mode of MODES) {
      $(`btn-${mode}`).addEventListener('click', () => {
        const run = runs.get(mode);
        if (starting.has(mode)) return;
        if (run && run.running) stop(mode);
        else start(mode);
      });
      setStatus(mode);
    }
    $('compare-start').addEventListener('click', () => compare());
    $('stop-all').addEventListener('click', () => stopAll());
    $('reset').addEventListener('click', () => reset());
    $('log-clear').addEventListener('click', () => $('log').replaceChildren());
    intervalInput.addEventListener('change', () => pollInterval());
    timeoutInput.addEventListener('change', () => longpollTimeout());
    // Redraw time-based bits (elapsed, charts) even when nothing arrives.
    setInterval(() => {
      if ([...runs.values()].some((r) => r.running) || countSeries.length) scheduleRender();
    }, 1000);
    window.addEventListener('pagehide', () => stopAll());
    document.documentElement.dataset.pageId = pageId;
    render();
    // One look at the server on load: process numbers and the current count.
    fetchStats(null)
      .then((body) => {
        if (body && body.snapshot && shown === null) showSnapshot(body.snapshot, null, Date.now());
        scheduleRender();
      })
      .catch((err) => log('page', `stats unavailable: ${err.message}`, 'error'));
    window.__pulse = { pageId, runs, metricsOf };
  }

  init();
})();
