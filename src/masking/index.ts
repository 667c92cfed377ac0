export { MASK, SECRET_FIELDS, compileMasking, type CompiledMasking, type MaskingInput } from './rules.js';
export { StreamMasker, createMaskingStream, maskText } from './stream-masker.js';
