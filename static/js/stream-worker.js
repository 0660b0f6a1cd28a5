// The SharedWorker that holds the one event stream for every tab of this
// origin. Each tab is a port: it says which sessions it shows ('watch') and
// says goodbye when it goes ('bye'); the worker sends it only its own
// sessions' events, the connection state, and directory notes.

import { Multiplexer } from './multiplex.js';

let hub = null;

onconnect = (event) => {
  const port = event.ports[0];
  port.onmessage = (e) => {
    const msg = e.data;
    if (msg.type === 'watch') {
      hub ||= new Multiplexer();
      hub.follow(port, msg, (m) => port.postMessage(m));
    } else if (msg.type === 'bye' && hub) {
      hub.unfollow(port);
    }
  };
  port.start();
};
