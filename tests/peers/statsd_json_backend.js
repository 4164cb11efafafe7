// A statsd daemon backend for tests: at every flush, one JSON line on stdout with what the daemon
// aggregated since the last flush (counters, gauges, timers), so a test can read what it understood.
exports.init = function (startupTime, config, events) {
  events.on('flush', function (timestamp, metrics) {
    console.log(JSON.stringify({
      flush: timestamp,
      counters: metrics.counters,
      gauges: metrics.gauges,
      timers: metrics.timers,
    }));
  });
  return true;
};
