// Issue 10 §4: a Node.js caller of costestimator.v1, built at run time from the repo's protos/ with
// @grpc/grpc-js + @grpc/proto-loader, as a TypeScript/Node team would. Usage:
//   node interop.js CONFIG.json
// CONFIG: {target, token, protos, includes: [dirs], requests: {estimate, stream, eligibility, bad, not_found}}
// (requests in the proto3 JSON mapping with the .proto field names). Prints one JSON object: what it decoded.
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const DEADLINE_MS = 30000;
const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

function protoFiles(root) {
  // Every .proto under protos/: new files and imports are picked up without editing this script.
  const found = [];
  for (const entry of fs.readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.proto')) {
      found.push(path.relative(root, path.join(entry.parentPath || entry.path, entry.name)));
    }
  }
  return found.sort();
}

function detailsRoot(includes) {
  // google.rpc.Status and its details, decoded from grpc-status-details-bin with plain protobufjs.
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => {
    for (const dir of includes) {
      const candidate = path.join(dir, target);
      if (fs.existsSync(candidate)) return candidate;
    }
    return protobuf.util.path.resolve(origin, target);
  };
  root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto']);
  return root;
}

function decodeError(error, root) {
  const decoded = { code: grpc.status[error.code], field_violations: [], error_infos: [], other_details: [] };
  const raw = error.metadata ? error.metadata.get('grpc-status-details-bin') : [];
  if (raw.length === 0) return decoded;
  const status = root.lookupType('google.rpc.Status').decode(raw[0]);
  for (const any of status.details) {
    const typeName = any.type_url.slice(any.type_url.lastIndexOf('/') + 1);
    if (typeName === 'google.rpc.BadRequest') {
      const bad = root.lookupType(typeName).decode(any.value);
      for (const v of bad.fieldViolations) decoded.field_violations.push({ field: v.field, description: v.description });
    } else if (typeName === 'google.rpc.ErrorInfo') {
      const info = root.lookupType(typeName).toObject(root.lookupType(typeName).decode(any.value), { defaults: true });
      decoded.error_infos.push({ reason: info.reason, domain: info.domain, metadata: info.metadata || {} });
    } else {
      decoded.other_details.push(typeName);
    }
  }
  return decoded;
}

function deadline() {
  return { deadline: new Date(Date.now() + DEADLINE_MS) };
}

function unary(client, method, request, metadata) {
  return new Promise((resolve) => {
    client[method](request, metadata, deadline(), (error, reply) => resolve({ error, reply }));
  });
}

function readStream(client, request, metadata) {
  // Each message is handled in its own 'data' event, as it arrives; the times show when.
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const messages = [];
    const call = client.StreamEstimates(request, metadata, deadline());
    call.on('data', (message) => {
      const e = message.estimate;
      messages.push({ provider_id: e.provider_id, member_pays: e.member_pays, plan_pays: e.plan_pays,
                      status_code: e.status ? e.status.code : 0,
                      at_ms: Number(process.hrtime.bigint() - started) / 1e6 });
    });
    call.on('error', reject);
    call.on('end', () => resolve({ messages, end_ms: Number(process.hrtime.bigint() - started) / 1e6 }));
  });
}

async function main() {
  const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const includes = [config.protos, ...config.includes];
  const definition = protoLoader.loadSync(protoFiles(config.protos), { ...LOADER_OPTIONS, includeDirs: includes });
  const v1 = grpc.loadPackageDefinition(definition).costestimator.v1;
  const credentials = grpc.credentials.createInsecure();
  const estimates = new v1.EstimateService(config.target, credentials);
  const eligibility = new v1.EligibilityService(config.target, credentials);
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${config.token}`);
  const root = detailsRoot(includes);
  const requests = config.requests;

  const out = {};
  const estimate = await unary(estimates, 'Estimate', requests.estimate, metadata);
  if (estimate.error) throw estimate.error;
  out.estimate = estimate.reply.estimates.map((e) => ({
    provider_id: e.provider_id, member_pays: e.member_pays, plan_pays: e.plan_pays,
    status_code: e.status ? e.status.code : 0 }));
  out.stream = await readStream(estimates, requests.stream, metadata);
  const check = await unary(eligibility, 'CheckEligibility', requests.eligibility, metadata);
  if (check.error) throw check.error;
  out.eligibility = { id: check.reply.check.id, status: check.reply.check.status,
                      plan_name: check.reply.check.summary ? check.reply.check.summary.plan_name : '' };
  for (const name of ['bad', 'not_found']) {
    const failed = await unary(estimates, 'Estimate', requests[name], metadata);
    if (!failed.error) throw new Error(`${name}: expected an error`);
    out[name] = decodeError(failed.error, root);
  }
  estimates.close();
  eligibility.close();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((error) => {
  process.stderr.write(`interop failed: ${error.stack || error}\n`);
  process.exit(1);
});
