// Resolves xds:///gatehouse-grpc against the Gatehouse control plane with @grpc/grpc-js-xds, an
// xDS client independent of grpc-go, and makes one unary call through the published route table.
// Exits 0 when the call succeeds.
//
// Environment:
//   GATEHOUSE_XDS_ADDR  control plane xDS host:port (required)
//   XDS_TARGET          default xds:///gatehouse-grpc
//   XDS_METHOD          gRPC method path to call, default /echo/Call0
//   XDS_NODE_ID         node id sent to the control plane, default gatehouse-xds-js
//   XDS_TIMEOUT_MS      overall deadline, default 20000
'use strict';

const addr = process.env.GATEHOUSE_XDS_ADDR;
if (!addr) {
  console.error('GATEHOUSE_XDS_ADDR is not set');
  process.exit(2);
}
const target = process.env.XDS_TARGET || 'xds:///gatehouse-grpc';
const method = process.env.XDS_METHOD || '/echo/Call0';
const nodeId = process.env.XDS_NODE_ID || 'gatehouse-xds-js';
const timeoutMs = Number(process.env.XDS_TIMEOUT_MS || 20000);

// The bootstrap is read when the first xds: channel is created.
process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
  xds_servers: [{ server_uri: addr, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
  node: { id: nodeId, cluster: 'proxyless-js', locality: {} },
});

const grpc = require('@grpc/grpc-js');
require('@grpc/grpc-js-xds').register();

const client = new grpc.Client(target, grpc.credentials.createInsecure());
const deadline = Date.now() + timeoutMs;
const empty = Buffer.alloc(0);

// Gatehouse routes match the HTTP method with a ":method" header matcher; proxyless clients
// match routes against call metadata, so the call carries it (the transport sends POST anyway).
function attempt() {
  const md = new grpc.Metadata();
  md.set(':method', 'POST');
  client.makeUnaryRequest(method, (b) => b, (b) => b, empty, md, { deadline: Math.min(deadline, Date.now() + 2000) }, (err) => {
    if (!err) {
      console.log(`ok: ${method} via ${target}`);
      client.close();
      process.exit(0);
    }
    if (Date.now() >= deadline) {
      console.error(`failed: ${method} via ${target}: ${err.code} ${err.details}`);
      process.exit(1);
    }
    if (process.env.XDS_DEBUG) console.error(`retry: ${err.code} ${err.details}`);
    setTimeout(attempt, 100);
  });
}
attempt();
