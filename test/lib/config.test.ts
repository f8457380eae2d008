import {
  ConfigError,
  compareVersions,
  configFromContext,
  parameterGroupFamily,
  parseConfig,
} from '../../lib/config';
import { adoptExisting, defaultRawConfig } from '../helpers/app';

type Json = Record<string, Record<string, unknown>>;

/** Parses the cdk.json config after `edit`, returning the error message ('' if valid). */
function errorFor(edit: (config: Json) => void): string {
  const raw = defaultRawConfig() as Json;
  edit(raw);
  try {
    parseConfig(raw);
    return '';
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
}

describe('config', () => {
  it('accepts the config shipped in cdk.json', () => {
    const config = parseConfig(defaultRawConfig());
    expect(config.database.engine).toBe('postgres');
    expect(
      compareVersions(config.database.targetEngineVersion ?? '0', config.database.engineVersion),
    ).toBeGreaterThan(0);
  });

  it('reads a config given on the command line as changes to the shipped one', () => {
    const shipped = defaultRawConfig();
    const fromCli = (json: string) => configFromContext(() => json, shipped);
    // Another engine, nothing else: the shipped app on that engine, with its demo versions.
    const mysql = fromCli('{"database":{"engine":"mysql"}}');
    expect(mysql.database).toMatchObject({
      engine: 'mysql',
      engineVersion: '8.0.42',
      targetEngineVersion: '8.4.5',
      instanceIdentifier: 'platform-db',
    });
    expect(mysql.edge).toEqual(parseConfig(shipped).edge);
    // Versions given with the engine are kept; a change elsewhere keeps the shipped versions.
    expect(
      fromCli('{"database":{"engine":"mysql","engineVersion":"8.0.40"}}').database.engineVersion,
    ).toBe('8.0.40');
    expect(fromCli('{"switchoverTimeoutSeconds":60}').database.engineVersion).toBe('16.6');
    // Arrays replace rather than merge; the shipped object is not changed.
    expect(fromCli('{"operatorBypass":{"sourceCidrs":["10.0.0.0/8"]}}').operatorBypass).toEqual(
      expect.objectContaining({ sourceCidrs: ['10.0.0.0/8'] }),
    );
    expect(shipped).toEqual(defaultRawConfig());
    // Not JSON: named, shown, nothing built.
    expect(() => fromCli('{engine:mysql}')).toThrow(
      'quietUpgrade must be a JSON object, got: "{engine:mysql}"',
    );
    // An invalid change is reported against its key.
    expect(() => fromCli('{"database":{"engine":"mysql","engineVersion":"16.6"}}')).toThrow(
      'quietUpgrade.database.engineVersion must be ',
    );
  });

  it('fails on an unknown engine, naming the key and the value', () => {
    expect(errorFor((c) => (c.database.engine = 'oracle-ee'))).toContain(
      'quietUpgrade.database.engine must be one of: postgres, mysql, aurora-postgresql, aurora-mysql, got: "oracle-ee"',
    );
  });

  it.each([
    ['mysql', '8.0.42', '8.4.5', '16.6'],
    ['aurora-postgresql', '16.6', '17.4', '8.0.40'],
    ['aurora-mysql', '8.0.mysql_aurora.3.10.0', '8.0.mysql_aurora.3.12.0', '8.0.42'],
  ])('knows %s versions, with a demo pair when none is set', (engine, current, target, foreign) => {
    // Versions in the engine's own form, and its demo pair when none is set.
    for (const versions of [{}, { engineVersion: current, targetEngineVersion: target }]) {
      const edit = (c: Json) => {
        c.database = { ...c.database, engine, ...versions };
        delete c.database.engineVersion;
        delete c.database.targetEngineVersion;
        Object.assign(c.database, versions);
      };
      expect(errorFor(edit)).toBe('');
      const raw = defaultRawConfig() as Json;
      edit(raw);
      const parsed = parseConfig(raw);
      expect([parsed.database.engineVersion, parsed.database.targetEngineVersion]).toEqual([
        current,
        target,
      ]);
    }
    // Another engine's version is not one of this engine's.
    expect(
      errorFor((c) => (c.database = { ...c.database, engine, engineVersion: foreign })),
    ).toContain(`quietUpgrade.database.engineVersion must be `);
    expect(compareVersions(target, current, engine as never)).toBeGreaterThan(0);
  });

  it.each([
    [
      { requestsPerMinute: 0 },
      'quietUpgrade.upgrade.quietGate.requestsPerMinute must be 1-10000000, got: 0',
    ],
    [
      { requestsPerMinute: 100, onDeadline: 'wait' },
      'quietUpgrade.upgrade.quietGate.onDeadline must be one of: roll-back, switch-anyway, got: "wait"',
    ],
    [
      { requestsPerMinute: 100, maxWaitMinutes: 61 },
      'quietUpgrade.upgrade.quietGate.maxWaitMinutes must be 1-60, got: 61',
    ],
    [
      { requestsPerMinute: 100, enabled: 'yes' },
      'quietUpgrade.upgrade.quietGate.enabled must be true or false, got: "yes"',
    ],
  ])('refuses the quiet gate %j, naming the key', (gate, message) => {
    expect(errorFor((c) => ((c.upgrade as Record<string, unknown>).quietGate = gate))).toContain(
      message,
    );
  });

  it('defaults the quiet gate to off, rolling back, waiting at most an hour', () => {
    const raw = defaultRawConfig() as Json;
    (raw.upgrade as Record<string, unknown>).quietGate = { requestsPerMinute: 100 };
    expect(parseConfig(raw).upgrade.quietGate).toEqual({
      requestsPerMinute: 100,
      enabled: false,
      onDeadline: 'roll-back',
      maxWaitMinutes: 60,
    });
  });

  it('fills in the engine’s demo versions when none is set, and keeps a lone engineVersion', () => {
    const raw = defaultRawConfig() as Json;
    delete raw.database?.engineVersion;
    delete raw.database?.targetEngineVersion;
    expect(parseConfig(raw).database).toMatchObject({
      engineVersion: '16.6',
      targetEngineVersion: '17.2',
    });
    const only = defaultRawConfig() as Json;
    delete only.database?.targetEngineVersion;
    expect(parseConfig(only).database.targetEngineVersion).toBeUndefined();
  });

  it.each([
    ['the same version', '16.6'],
    ['an older minor', '16.2'],
    ['an older major', '15.10'],
  ])('fails when the target is %s', (_case, target) => {
    expect(errorFor((c) => (c.database.targetEngineVersion = target))).toContain(
      `quietUpgrade.database.targetEngineVersion must be newer than engineVersion (16.6), got: "${target}"`,
    );
  });

  it('compares versions numerically, not as text', () => {
    expect(compareVersions('16.10', '16.9')).toBeGreaterThan(0);
    expect(compareVersions('9.6', '10.1')).toBeLessThan(0);
    expect(errorFor((c) => (c.database.targetEngineVersion = '16.10'))).toBe('');
  });

  it('fails on a malformed engine version', () => {
    expect(errorFor((c) => (c.database.engineVersion = '16'))).toContain(
      'quietUpgrade.database.engineVersion must be a major.minor version such as "16.6" for engine postgres, got: "16"',
    );
  });

  it.each([
    ['a wrong format', 'sunday 04:00', 'must be ddd:hh24:mi-ddd:hh24:mi'],
    ['an hour past 23', 'sun:25:00-sun:26:00', 'has an hour above 23 or a minute above 59'],
    ['less than 30 minutes', 'sun:04:00-sun:04:15', 'must last at least 30 minutes'],
    ['more than a day', 'sun:04:00-tue:04:00', 'must last at most 24 hours'],
  ])('fails on a maintenance window with %s', (_case, window, problem) => {
    const message = errorFor((c) => ((c as Record<string, unknown>).maintenanceWindow = window));
    expect(message).toContain(`quietUpgrade.maintenanceWindow ${problem}`);
    expect(message).toContain(JSON.stringify(window));
  });

  it('accepts a window that wraps around the end of the week', () => {
    expect(
      errorFor((c) => ((c as Record<string, unknown>).maintenanceWindow = 'sun:23:30-mon:00:30')),
    ).toBe('');
  });

  it.each([
    ['database.allocatedStorageGiB', -20, 'must be 20-65536 GiB, got: -20'],
    ['database.allocatedStorageGiB', 1e9, 'must be 20-65536 GiB, got: 1000000000'],
    [
      'database.backupRetentionDays',
      0,
      'must be 1-35 (blue/green needs automated backups), got: 0',
    ],
    ['database.backupRetentionDays', 2.5, 'must be a whole number, got: 2.5'],
    ['switchoverTimeoutSeconds', 5, 'must be 30-3600, got: 5'],
    ['switchoverTimeoutSeconds', 86400, 'must be 30-3600, got: 86400'],
    ['switchoverTimeoutSeconds', '300', 'must be a number, got: "300"'],
  ])('fails when %s is %p', (key, value, problem) => {
    const message = errorFor((c) => {
      const [first = '', second] = key.split('.');
      if (second === undefined) (c as Record<string, unknown>)[first] = value;
      else (c[first] as Record<string, unknown>)[second] = value;
    });
    expect(message).toContain(`quietUpgrade.${key} ${problem}`);
  });

  it('fails on a bad notification email and bad bypass CIDRs', () => {
    const message = errorFor((c) => {
      (c as Record<string, unknown>).notificationEmail = 'oncall-at-example';
      c.operatorBypass.sourceCidrs = ['10.0.0.0/8', '300.1.1.1/32', '2001:db8::/129'];
    });
    expect(message).toContain('quietUpgrade.notificationEmail must be an email address');
    expect(message).toContain(
      'quietUpgrade.operatorBypass.sourceCidrs.1 must be an IPv4 or IPv6 CIDR, got: "300.1.1.1/32"',
    );
    expect(message).toContain(
      'quietUpgrade.operatorBypass.sourceCidrs.2 must be an IPv4 or IPv6 CIDR, got: "2001:db8::/129"',
    );
    expect(message).not.toContain('sourceCidrs.0');
  });

  it('reports every problem at once, and unknown keys by name', () => {
    const message = errorFor((c) => {
      c.database.engine = 'mongodb';
      c.database.instanceIdentifier = 'Platform_DB';
      c.env.region = 'mars';
      c.database.multiAZ = true;
    });
    expect(message).toContain('quietUpgrade.database.engine must be one of');
    expect(message).toContain('quietUpgrade.database.instanceIdentifier must be 1-63 lowercase');
    expect(message).toContain(
      'quietUpgrade.env.region must be an AWS region such as "eu-west-1", got: "mars"',
    );
    expect(message).toContain('quietUpgrade.database has unknown key(s): multiAZ');
  });

  it('fails on edge settings the load balancer cannot take', () => {
    const message = errorFor((c) => {
      c.edge.certificateArn = 'arn:aws:iam::123456789012:server-certificate/x';
      (c.edge.capturePaths as Record<string, string>).click = '/t/*';
      (c.edge.capturePaths as Record<string, string>).open = '/confirm';
      c.edge.maintenanceRulePriority = 0;
    });
    expect(message).toContain(
      'quietUpgrade.edge.certificateArn must be an ACM certificate ARN or ""',
    );
    expect(message).toContain(
      'quietUpgrade.edge.capturePaths.click must be a path such as "/t/click"',
    );
    expect(message).toContain('got: "/t/*"');
    expect(message).toContain('quietUpgrade.edge.maintenanceRulePriority must be 1-49990, got: 0');
  });

  it('fails when two capture paths are the same', () => {
    expect(
      errorFor((c) => ((c.edge.capturePaths as Record<string, string>).open = '/confirm')),
    ).toContain('quietUpgrade.edge.capturePaths must be five different paths');
  });

  it('refuses a demo listener over plain HTTP unless the config asks for it', () => {
    const plain = (c: Json) => {
      c.edge.certificateArn = '';
      delete c.edge.allowPlainHttp;
    };
    expect(errorFor(plain)).toContain(
      'quietUpgrade.edge.certificateArn must be an ACM certificate ARN, so that the links in ' +
        'email use HTTPS (RFC 8058 one-click unsubscribe requires it), or set ' +
        'edge.allowPlainHttp to true to serve plain HTTP on purpose, got: ""',
    );
    expect(errorFor((c) => (plain(c), (c.edge.allowPlainHttp = 'yes')))).toContain(
      'quietUpgrade.edge.allowPlainHttp must be true or false',
    );
    const raw = defaultRawConfig();
    plain(raw as Json);
    (raw as Json).edge.certificateArn =
      'arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9';
    expect(parseConfig(raw).edge.allowPlainHttp).toBe(false);
  });

  it('fails when operators would have no way past the maintenance page', () => {
    expect(
      errorFor((c) => {
        delete c.operatorBypass.headerName;
        c.operatorBypass.sourceCidrs = [];
      }),
    ).toContain('quietUpgrade.operatorBypass needs a headerName or sourceCidrs');
  });

  it('fails on a schedule or time zone EventBridge Scheduler would refuse', () => {
    const message = errorFor((c) => {
      c.upgrade.schedule = 'every sunday';
      c.upgrade.scheduleTimeZone = 'Mars/Olympus';
      c.upgrade.deadlineMinutes = 10;
    });
    expect(message).toContain(
      'quietUpgrade.upgrade.schedule must be "", at(yyyy-mm-ddThh:mm:ss) or cron(',
    );
    expect(message).toContain(
      'quietUpgrade.upgrade.scheduleTimeZone must be an IANA time zone such as "UTC", got: "Mars/Olympus"',
    );
    expect(message).toContain('quietUpgrade.upgrade.deadlineMinutes must be 30-1440, got: 10');
  });

  it('names a missing key', () => {
    expect(errorFor((c) => delete c.database.instanceClass)).toContain(
      'quietUpgrade.database.instanceClass',
    );
    expect(errorFor((c) => delete c.database.instanceClass)).toContain('got: (missing)');
  });

  it('derives the parameter group family from the major version', () => {
    expect(parameterGroupFamily('postgres', '17.2')).toBe('postgres17');
  });

  it('fails on an alarm threshold outside 5 minutes to 7 days', () => {
    expect(errorFor((c) => (c.alarms.maxMessageAgeMinutes = 20160))).toContain(
      'quietUpgrade.alarms.maxMessageAgeMinutes must be 5-10080 (5 minutes to 7 days), got: 20160',
    );
  });
});

describe('config: the platform switch', () => {
  it('accepts the adopted platform fixture', () => {
    const raw = defaultRawConfig();
    adoptExisting(raw);
    expect(parseConfig(raw).platform).toBe('existing');
  });

  it('fails on an unknown platform, naming the choices', () => {
    expect(errorFor((c) => ((c as Record<string, unknown>).platform = 'adopt'))).toContain(
      'quietUpgrade.platform must be one of: demo, existing, got: "adopt"',
    );
  });

  it('asks for the platform to adopt when platform is "existing" without one', () => {
    expect(errorFor((c) => ((c as Record<string, unknown>).platform = 'existing'))).toContain(
      'quietUpgrade.existing must describe the platform to adopt when platform is "existing"',
    );
  });

  it('asks for a target parameter group before a major upgrade of an adopted database', () => {
    const message = errorFor((c) => {
      adoptExisting(c);
      delete (c.existing.database as Record<string, unknown>).targetParameterGroupName;
    });
    expect(message).toContain(
      'quietUpgrade.existing.database.targetParameterGroupName must name a postgres17 parameter group',
    );
    // A minor upgrade stays in the family: green may use the running group.
    expect(
      errorFor((c) => {
        adoptExisting(c);
        delete (c.existing.database as Record<string, unknown>).targetParameterGroupName;
        c.database.targetEngineVersion = '16.8';
      }),
    ).toBe('');
  });

  it('names each malformed id or ARN of the adopted platform and shows it', () => {
    const message = errorFor((c) => {
      adoptExisting(c);
      const existing = c.existing as Record<string, Record<string, unknown>>;
      (existing.buffers?.sends as Record<string, unknown>).queueArn = 'platform-sends';
      (existing.buffers?.tracking as Record<string, unknown>).eventSourceMappingId = 'abc';
      (existing.network as Record<string, unknown>).subnetIds = [];
      (existing.listener as Record<string, unknown>).listenerArn = 'arn:aws:elasticloadbalancing:x';
    });
    expect(message).toContain(
      'quietUpgrade.existing.buffers.sends.queueArn must be an ARN such as "arn:aws:sqs:eu-west-1:123456789012:sends" (a standard queue: FIFO queues are not supported), got: "platform-sends"',
    );
    expect(message).toContain(
      'quietUpgrade.existing.buffers.tracking.eventSourceMappingId must be an event source mapping UUID, got: "abc"',
    );
    expect(message).toContain(
      'quietUpgrade.existing.network.subnetIds must list at least one subnet, got: []',
    );
    expect(message).toContain('quietUpgrade.existing.listener.listenerArn must be an ARN');
  });
});

describe('config: abuse controls', () => {
  type Edge = { waf: Record<string, unknown>; reservedConcurrency: Record<string, unknown> };
  const edgeOf = (c: Json) => c.edge as unknown as Edge;

  const LIMIT = "must be 10-100000 requests per window per address (AWS WAF's lowest limit is 10)";
  it.each([
    ['requestsPerWindow.subscriptions', 5, LIMIT],
    ['requestsPerWindow.tracking', 9, LIMIT],
    ['requestsPerWindow.tracking', 100001, LIMIT],
    ['requestsPerWindow.subscriptions', 12.5, 'must be a whole number'],
    ['evaluationWindowSeconds', 90, 'must be one of: 60, 120, 300, 600 (seconds)'],
    ['associateAdoptedLoadBalancer', 'yes', 'must be true or false'],
  ])('refuses edge.waf.%s = %p, naming the key and the value', (key, value, problem) => {
    const message = errorFor((c) => {
      const waf = edgeOf(c).waf;
      const [first = '', second] = key.split('.');
      if (second === undefined) waf[first] = value;
      else (waf[first] as Record<string, unknown>)[second] = value;
    });
    expect(message).toContain(
      `quietUpgrade.edge.waf.${key} ${problem}, got: ${JSON.stringify(value)}`,
    );
  });

  it.each([
    ['capture', -1, 'must be 0-1000 (0: no reservation)'],
    ['capture', 1001, 'must be 0-1000 (0: no reservation)'],
    ['maintenanceToggle', 21, 'must be 0-20 (0: no reservation)'],
    ['verifyWriter', 1.5, 'must be a whole number'],
  ])('refuses edge.reservedConcurrency.%s = %p', (key, value, problem) => {
    expect(errorFor((c) => (edgeOf(c).reservedConcurrency[key] = value))).toContain(
      `quietUpgrade.edge.reservedConcurrency.${key} ${problem}, got: ${value}`,
    );
  });

  it('accepts the lowest limit AWS WAF allows, and 0 for no reservation', () => {
    expect(
      errorFor((c) => {
        (edgeOf(c).waf.requestsPerWindow as Record<string, unknown>).subscriptions = 10;
        edgeOf(c).reservedConcurrency.capture = 0;
      }),
    ).toBe('');
  });

  it('defaults to the shipped limits and reservations when the keys are left out', () => {
    const shipped = parseConfig(defaultRawConfig()).edge;
    const raw = defaultRawConfig() as Json;
    delete raw.edge.waf;
    delete raw.edge.reservedConcurrency;
    const defaults = parseConfig(raw).edge;
    expect(defaults.waf).toEqual(shipped.waf);
    expect(defaults.reservedConcurrency).toEqual(shipped.reservedConcurrency);
    expect(defaults.waf.associateAdoptedLoadBalancer).toBe(false);
  });

  it('names an unknown key under edge.waf', () => {
    expect(errorFor((c) => (edgeOf(c).waf.limit = 100))).toContain(
      'quietUpgrade.edge.waf has unknown key(s): limit',
    );
  });
});
