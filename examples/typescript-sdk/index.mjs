// SPDX-License-Identifier: Apache-2.0
// The Anthropic TypeScript SDK (@anthropic-ai/sdk) talking to claudegate
// serve-local: one messages.create and one streamed message, with the
// gateway's URL as baseURL and a claudegate access token as authToken.
// Plain JavaScript (ES module) so Node runs it as is; in TypeScript the code is the same.
import Anthropic from '@anthropic-ai/sdk';

const baseURL = process.env.CLAUDEGATE_URL;
const authToken = process.env.CLAUDEGATE_TOKEN;
if (!baseURL || !authToken) {
  console.error('set CLAUDEGATE_URL (e.g. http://127.0.0.1:8787) and CLAUDEGATE_TOKEN (claudegate issue --sub …)');
  process.exit(2);
}

function check(condition, what) {
  if (!condition) {
    throw new Error(`check failed: ${what}`);
  }
}

const time = () => new Date().toISOString().slice(11, 23);

// authToken is sent as `Authorization: Bearer <token>`; the gateway swaps it
// for the real API key, which never reaches this machine.
const client = new Anthropic({ baseURL, authToken, maxRetries: 0 });

// 1. A plain call; withResponse() also gives the HTTP headers.
const { data: message, response } = await client.messages
  .create({
    model: 'claude-haiku-4-5',
    max_tokens: 200,
    messages: [{ role: 'user', content: 'Hello from the TypeScript SDK' }],
  })
  .withResponse();
const text = message.content.filter((block) => block.type === 'text').map((block) => block.text).join('');
console.log(`messages.create → ${message.id}: ${text}`);
console.log(`usage: ${message.usage.input_tokens} in, ${message.usage.output_tokens} out`);
const remaining = response.headers.get('x-claudegate-quota-remaining');
console.log(`x-claudegate-quota-remaining: ${remaining} of ${response.headers.get('x-claudegate-quota-limit')}`);
check(message.type === 'message' && text.length > 0, 'messages.create returned text');
check(message.usage.output_tokens > 0, 'messages.create reported usage');
check(remaining !== null && Number(remaining) > 0, 'the quota headers came through');

// 2. A streamed call: events as they arrive, then the assembled message.
const stream = client.messages.stream({
  model: 'claude-haiku-4-5',
  max_tokens: 200,
  messages: [{ role: 'user', content: 'Stream me a reply' }],
});
const events = [];
for await (const event of stream) {
  events.push(event.type);
  const delta = event.type === 'content_block_delta' && event.delta.type === 'text_delta' ? ` ${JSON.stringify(event.delta.text)}` : '';
  console.log(`${time()}  ${event.type}${delta}`);
}
const streamed = await stream.finalMessage();
const streamedText = streamed.content.filter((block) => block.type === 'text').map((block) => block.text).join('');
console.log(`messages.stream → ${streamed.id}: ${streamedText}`);
check(events[0] === 'message_start' && events.at(-1) === 'message_stop', 'the stream ran from message_start to message_stop');
check(events.filter((type) => type === 'content_block_delta').length > 1, 'text arrived in several deltas');
check(streamedText.length > 0 && streamed.usage.output_tokens > 0, 'the streamed message has text and usage');

// 3. The gateway's refusals are the SDK's usual typed errors.
try {
  await client.messages.create({ model: 'claude-opus-4-1', max_tokens: 20, messages: [{ role: 'user', content: 'Hi' }] });
  check(false, 'a model outside the plan was refused');
} catch (error) {
  if (!(error instanceof Anthropic.PermissionDeniedError)) {
    throw error;
  }
  console.log(`claude-opus-4-1 → ${error.status} ${error.error?.error?.type}: ${error.error?.error?.message}`);
}
console.log('typescript-sdk: SDK checks passed');
