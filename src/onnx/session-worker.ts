// The worker thread that holds an OnnxModel's session. ONNX Runtime's Node binding runs inference on the
// calling thread and blocks it for the whole forward: here that thread is this worker's, not the event loop's.
// Requests are handled one at a time, in order.
import { parentPort } from 'node:worker_threads';

import * as ort from 'onnxruntime-node';

import { lowerThisThread } from '../thread-priority.js';
import { runSession, sessionOptions, valueInfos, type Reply, type Request } from './protocol.js';

const port = parentPort!;
let session: ort.InferenceSession | undefined;
let queue: Promise<void> = Promise.resolve();

function reply(message: Reply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

function failure(err: unknown, id?: number): Reply {
  const code = (err as { code?: unknown }).code;
  return { type: 'error', id, message: (err as Error).message ?? String(err), code: typeof code === 'string' ? code : 'ERR_FORWARD' };
}

async function handle(request: Request): Promise<void> {
  switch (request.type) {
    case 'load':
      try {
        // The threads ONNX Runtime starts for the session inherit this one's priority: lowered, the forwards
        // yield the cores to the event loop whenever it has work.
        lowerThisThread(request.niceness);
        const options = sessionOptions(request.settings);
        session = request.bytes ? await ort.InferenceSession.create(request.bytes, options) : await ort.InferenceSession.create(request.file, options);
        reply({
          type: 'loaded',
          inputs: valueInfos(session.inputNames, session.inputMetadata),
          outputs: valueInfos(session.outputNames, session.outputMetadata),
        });
      } catch (err) {
        reply({ ...failure(err), code: 'ERR_MODEL_LOAD' } as Reply);
      }
      return;
    case 'run':
      try {
        const outputs = await runSession(ort, session!, request.inputs);
        // Outputs are this thread's own memory: handed over, not copied.
        const buffers = [...new Set(outputs.map((o) => o.data.buffer as ArrayBuffer))];
        reply({ type: 'result', id: request.id, outputs }, buffers);
      } catch (err) {
        reply(failure(err, request.id));
      }
      return;
    case 'dispose':
      await session?.release();
      session = undefined;
      reply({ type: 'disposed' });
      port.close();
      return;
  }
}

port.on('message', (request: Request) => {
  queue = queue.then(() => handle(request));
});
