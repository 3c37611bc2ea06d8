// Loaded by path (DataConverter.failureConverterPath) by clients, the worker and the workflow bundle: failure
// messages and stack traces move into an encoded payload, which the payload codec then encrypts. Used only when
// TERRAPIN_PAYLOAD_KEY is set (app/codec.ts). Kept to @temporalio/common: it runs inside the workflow sandbox too.
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
