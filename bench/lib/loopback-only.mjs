// Preloaded (`node --import`) into Portkey's gateway, whose start script listens on every
// interface with no option to choose: a listen() without a host gets 127.0.0.1 instead.
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function listenOnLoopback(...args) {
  if (typeof args[0] === 'number') {
    if (typeof args[1] !== 'string') args.splice(1, args[1] === undefined ? 1 : 0, '127.0.0.1');
  } else if (args[0] !== null && typeof args[0] === 'object' && args[0].path === undefined && args[0].host === undefined) {
    args[0] = { ...args[0], host: '127.0.0.1' };
  }
  return listen.apply(this, args);
};
