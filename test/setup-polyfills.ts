import '../rehearsal/polyfills';
