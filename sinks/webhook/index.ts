import { Type, type Static } from '@sinclair/typebox';
import { SinkEntrySchema } from '../../agent/config/schema.js';
import { defineSink } from '../../agent/plugin/define.js';
import { WebhookSink } from './webhook-sink.js';

export { signBody, idempotencyKey, SIGNATURE_HEADER, IDEMPOTENCY_HEADER, EVENT_COUNT_HEADER } from './signature.js';

/** One `sinks[]` entry of type `webhook`; docs/sinks/webhook.md is written from these descriptions. */
export const WebhookSinkConfig = Type.Object(
  {
    name: SinkEntrySchema.properties.name,
    type: Type.Literal('webhook', { description: 'POSTs each batch of events as a JSON array to an HTTP(S) endpoint.' }),
    url: Type.String({
      pattern: '^https?://[^\\s]+$',
      description: 'The endpoint, http:// or https://. Credentials in the URL are allowed but never logged; prefer a header with a ${env:NAME} reference.',
      examples: ['http://127.0.0.1:8080/events'],
    }),
    secret: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Key of the HMAC-SHA256 signature sent as `X-Ferry-Signature: sha256=HEX` over the exact body bytes. Write it as ${env:NAME} or ${file:PATH}; without it no signature is sent.',
        examples: ['${env:HUB_SECRET}'],
      }),
    ),
    headers: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$' }), Type.String(), {
        description: 'Extra request headers, e.g. Authorization. Values may be ${env:NAME} references and are never logged. They cannot replace the headers Ferry sets (Content-Type, X-Ferry-Signature, Idempotency-Key, X-Ferry-Event-Count).',
        examples: [{ Authorization: 'Bearer ${env:HUB_TOKEN}' }],
        additionalProperties: false,
      }),
    ),
    timeoutMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 600_000,
        default: 10_000,
        description: 'How long one request may take, from connecting to the end of the response, before it is abandoned and retried.',
      }),
    ),
    method: Type.Optional(
      Type.Union([Type.Literal('POST'), Type.Literal('PUT')], { default: 'POST', description: 'HTTP method of the delivery request.' }),
    ),
  },
  {
    additionalProperties: false,
    title: 'webhook sink',
    description: 'HTTP delivery of JSON arrays of events, signed with HMAC-SHA256, with an Idempotency-Key per batch and the event id on every event.',
  },
);

export type WebhookSinkConfig = Static<typeof WebhookSinkConfig>;

export const webhookSink = defineSink({
  type: 'webhook',
  summary: 'POSTs batches of events as a signed JSON array to an HTTP endpoint, with an Idempotency-Key.',
  config: WebhookSinkConfig,
  create: (config) =>
    new WebhookSink({
      name: config.name,
      url: config.url,
      secret: config.secret,
      headers: config.headers ?? {},
      timeoutMs: config.timeoutMs ?? 10_000,
      method: config.method ?? 'POST',
    }),
});
