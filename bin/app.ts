#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app';
import { ConfigError } from '../lib/config';

try {
  buildApp(new App());
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  // A config error is the operator's to fix: print it plainly, without a stack trace.
  console.error(err.message);
  process.exit(1);
}
