// Not `import … from 'node:http'`: an ES import of node:http evaluates every export, and its
// lazy WebSocket/EventSource getters load undici, 35-50 ms of every command's start-up (measured
// in profiles of `ddiff load` and `ddiff load --help`), whether it speaks HTTP or not.
export const { request: httpRequest } = process.getBuiltinModule('node:http');
export const { Agent: HttpsAgent, request: httpsRequest } = process.getBuiltinModule('node:https');
