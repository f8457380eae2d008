/** A required environment variable; a clear error names it when it is missing. */
export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '')
    throw new Error(`environment variable ${name} is not set`);
  return value;
}
