// A Fluentd forward-protocol receiver for tests (@fluent-org/logger's FluentServer): listens on
// 127.0.0.1:PORT (argv[2], 0 = any free port), prints {"listening": port} once ready, then one JSON line
// per event received: {"tag": ..., "time": [seconds, nanoseconds] or seconds, "record": {...}}.
const {FluentServer, EventTime} = require('@fluent-org/logger');

const server = new FluentServer({listenOptions: {port: Number(process.argv[2] || 0), host: '127.0.0.1'}});
server.on('entry', (tag, time, record) => {
  const when = time instanceof EventTime ? [time.epoch, time.nano] : time;
  console.log(JSON.stringify({tag, time: when, record}));
});
server.listen().then(() => console.log(JSON.stringify({listening: server.port})));
