// Quiet structured logs in tests; tests that check a log line spy on the logger instead.
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
process.env.POWERTOOLS_SERVICE_NAME = 'test';
// The SDK warns that its 2027 releases need Node 22; Lambda runs these functions on Node 24.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
