/** The engines, as the functions know them too (lambda/shared/engines.ts). */
export * from '../lambda/shared/engines';
