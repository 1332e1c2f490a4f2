// Node.js client test for crabcache.v1.Cache (@grpc/grpc-js + @grpc/proto-loader).
//
// Usage: node cache_client_test.js HOST:PORT
// The proto is loaded at run time from proto/crabcache/v1/cache.proto; nothing is generated.
// The regions between the --8<-- markers are docs/grpc.md's Node snippets, word for word
// (tests/docs/check_grpc_snippets.py checks it).
'use strict';

const assert = require('node:assert/strict');
const path = require('node:path');

const PROTO_ROOT = path.join(__dirname, '..', '..', '..', 'proto');  // The repository's proto/.
// --8<-- [start:node-setup]
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const definition = protoLoader.loadSync('crabcache/v1/cache.proto', {
  includeDirs: [PROTO_ROOT],
  keepCase: true,   // Field names as in the proto (ttl_ms).
  longs: String,    // uint64/int64 as decimal strings.
  enums: String,    // Result codes as 'OK', 'HIT', ...
  defaults: true,   // Absent fields read as their default (empty value, ttl_ms '0').
  oneofs: true,     // command.op names the operation that is set.
});
const v1 = grpc.loadPackageDefinition(definition).crabcache.v1;
// --8<-- [end:node-setup]

// --8<-- [start:node-helpers]
function deadline(seconds) {
  return new Date(Date.now() + seconds * 1000);
}

// Unary RPCs take (request, [metadata], [options], callback); this wraps one in a promise.
function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: deadline(5) }, (err, response) =>
      err ? reject(err) : resolve(response));
  });
}

// Sends the batches on one BatchExecute stream, half-closes it and resolves with every response
// (one per batch, in order) when the server ends the stream.
function runStream(client, batches) {
  return new Promise((resolve, reject) => {
    const responses = [];
    const call = client.BatchExecute({ deadline: deadline(10) });
    call.on('data', (response) => responses.push(response));
    call.on('error', reject);
    call.on('end', () => resolve(responses));
    for (const batch of batches) call.write(batch);
    call.end();
  });
}
// --8<-- [end:node-helpers]

async function testBatchExecute(client) {
  // --8<-- [start:node-batch]
  const responses = await runStream(client, [
    {
      id: 1,
      commands: [
        { set: { key: Buffer.from('js:greeting'), value: Buffer.from('hello'), ttl_ms: 60000 } },
        { get: { key: Buffer.from('js:greeting') } },
        { get: { key: Buffer.from('js:missing') } },
      ],
    },
    {
      id: 2,
      commands: [
        { ttl: { key: Buffer.from('js:greeting') } },
        { delete: { key: Buffer.from('js:greeting') } },
        { delete: { key: Buffer.from('js:greeting') } },
        { ping: {} },
      ],
    },
    { id: 3, commands: [] },
  ]);
  for (const response of responses) {
    for (const r of response.results) {
      console.log(response.id, r.code, r.value.toString(), r.ttl_ms);
    }
  }
  // --8<-- [end:node-batch]
  assert.deepEqual(responses.map((r) => r.id), ['1', '2', '3']);
  assert.deepEqual(responses[0].results.map((r) => r.code), ['OK', 'HIT', 'MISS']);
  assert.equal(responses[0].results[1].value.toString(), 'hello');
  assert.deepEqual(responses[1].results.map((r) => r.code), ['OK', 'OK', 'NOT_FOUND', 'PONG']);
  assert.ok(Number(responses[1].results[0].ttl_ms) > 50000);
  assert.equal(responses[2].results.length, 0);
}

async function testManyBatches(client) {
  const batches = [];
  for (let i = 0; i < 200; i++) {
    const key = Buffer.from(`js:k${i}`);
    batches.push({
      id: i,
      commands: [{ set: { key, value: Buffer.from([i % 256, 0, 255]) } }, { get: { key } }],
    });
  }
  const responses = await runStream(client, batches);
  assert.equal(responses.length, 200);
  responses.forEach((r, i) => {
    assert.equal(r.id, String(i));
    assert.equal(r.results[1].code, 'HIT');
    assert.deepEqual([...r.results[1].value], [i % 256, 0, 255]);
  });
}

async function testBadCommandAndOversizedBatch(client) {
  const [response] = await runStream(client, [{ id: 9, commands: [{}, { ping: {} }] }]);
  assert.deepEqual(response.results.map((r) => r.code), ['ERROR', 'PONG']);
  assert.match(response.results[0].error, /^INVALID_ARGUMENT/);

  const big = { id: 1, commands: Array.from({ length: 10001 }, () => ({ ping: {} })) };
  await assert.rejects(runStream(client, [big]),
    (err) => err.code === grpc.status.INVALID_ARGUMENT);
}

async function testUnary(client) {
  // --8<-- [start:node-unary]
  await unary(client, 'Ping', {});
  await unary(client, 'Set', { key: Buffer.from('js:unary'), value: Buffer.from([0, 255]) });
  const got = await unary(client, 'Get', { key: Buffer.from('js:unary') });
  console.log(got.found, got.value);  // true <Buffer 00 ff>
  const del = await unary(client, 'Delete', { key: Buffer.from('js:unary') });
  console.log(del.deleted);  // true
  // --8<-- [end:node-unary]
  assert.ok(got.found);
  assert.deepEqual([...got.value], [0, 255]);
  assert.ok(del.deleted);
  assert.equal((await unary(client, 'Get', { key: Buffer.from('js:unary') })).found, false);
  assert.equal((await unary(client, 'Delete', { key: Buffer.from('js:unary') })).deleted, false);
}

async function main() {
  const target = process.argv[2];
  if (!target) throw new Error('usage: node cache_client_test.js HOST:PORT');
  // --8<-- [start:node-connect]
  const client = new v1.Cache(target, grpc.credentials.createInsecure());
  // --8<-- [end:node-connect]
  const tests = { testBatchExecute, testManyBatches, testBadCommandAndOversizedBatch, testUnary };
  let failed = 0;
  for (const [name, test] of Object.entries(tests)) {
    try {
      await test(client);
      console.log(`ok   ${name}`);
    } catch (err) {
      failed++;
      console.log(`FAIL ${name}: ${err && err.stack ? err.stack : err}`);
    }
  }
  client.close();
  console.log(failed ? `${failed} test(s) failed` : 'all node tests passed');
  process.exitCode = failed ? 1 : 0;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
