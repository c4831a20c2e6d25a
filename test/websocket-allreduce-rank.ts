// A rank for the launcher test: joins the WebSocket group from the environment `normkit run` sets and all-reduces rank + 1.
import { joinWebSocketGroup } from '../src/node/websocket-group.ts';

const group = await joinWebSocketGroup({ timeoutMs: 30_000 });
const values = Float64Array.of(group.communicator.rank + 1);
await group.communicator.allReduce(values);
console.log(`sum ${values[0]}`);
await group.close();
