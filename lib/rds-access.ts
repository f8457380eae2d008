import * as iam from 'aws-cdk-lib/aws-iam';
import { ENGINE_SPECS, type DatabaseEngine, type EngineSpec } from './engines';

/**
 * What the upgrade asks of RDS, by the level an engine runs at: the same step on an RDS DB
 * instance and on an Aurora DB cluster is a different IAM action on a different resource type.
 * The upgrade stack and the state machines take every RDS action and resource type from here,
 * so a function's or a machine's needs change in one place.
 *
 * The actions and resource types are the Service Authorization Reference's (SAR):
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-actions-as-permissions
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-resources-for-iam-policies
 * ("db": arn:${Partition}:rds:${Region}:${Account}:db:${DbInstanceName}; "cluster":
 * ...:cluster:${DbClusterInstanceName}; "pg": ...:pg:${ParameterGroupName}; "cluster-pg":
 * ...:cluster-pg:${ClusterParameterGroupName}; "cluster-endpoint", "og", "subgrp",
 * "deployment" likewise.)
 */
export type DatabaseLevel = EngineSpec['level'];

export interface RdsVocabulary {
  /** The resource type, in an ARN, of what the upgrade upgrades: a DB instance or a cluster. */
  readonly database: 'db' | 'cluster';
  /** The resource type of the parameter group the engine's settings live in. */
  readonly parameterGroup: 'pg' | 'cluster-pg';
  /** Reads the database (status, version, endpoint, members). */
  readonly describe: string;
  /** Reads a parameter group's parameters. */
  readonly describeParameters: string;
  /** Renames the database, attaches a parameter group, turns deletion protection on or off. */
  readonly modify: string;
  readonly copyParameterGroup: string;
  readonly modifyParameterGroup: string;
}

/**
 * Aurora: renames (NewDBClusterIdentifier), the group the engine's settings are read from
 * (DBClusterParameterGroupName) and deletion protection are the cluster's, and the read-only
 * parameters are DB cluster parameters (Aurora MySQL 3 `read_only`, Aurora PostgreSQL
 * `default_transaction_read_only`).
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Reference.ParameterGroups.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraPostgreSQL.Reference.ParameterGroups.html
 */
export const RDS_VOCABULARY: Record<DatabaseLevel, RdsVocabulary> = {
  instance: {
    database: 'db',
    parameterGroup: 'pg',
    describe: 'rds:DescribeDBInstances',
    describeParameters: 'rds:DescribeDBParameters',
    modify: 'rds:ModifyDBInstance',
    copyParameterGroup: 'rds:CopyDBParameterGroup',
    modifyParameterGroup: 'rds:ModifyDBParameterGroup',
  },
  cluster: {
    database: 'cluster',
    parameterGroup: 'cluster-pg',
    describe: 'rds:DescribeDBClusters',
    describeParameters: 'rds:DescribeDBClusterParameters',
    modify: 'rds:ModifyDBCluster',
    copyParameterGroup: 'rds:CopyDBClusterParameterGroup',
    modifyParameterGroup: 'rds:ModifyDBClusterParameterGroup',
  },
};

/** The level an engine runs at, and its vocabulary. */
export function rdsVocabulary(engine: DatabaseEngine): RdsVocabulary & { level: DatabaseLevel } {
  const level = ENGINE_SPECS[engine].level;
  return { level, ...RDS_VOCABULARY[level] };
}

/** An RDS ARN of one resource type: `arn(type, name)`, `name` may be "*". */
export type RdsArn = (resourceType: string, name: string) => string;

/** A blue/green operation's grants beyond its own action, per the user guide of the level. */
export interface BlueGreenGrants {
  /**
   * CreateBlueGreenDeployment's own resources besides the deployment: the source, and the
   * parameter groups green is given.
   */
  readonly createResources: string[];
  /** What creating green needs besides CreateBlueGreenDeployment. */
  readonly create: iam.PolicyStatement[];
  /** What switching over needs besides SwitchoverBlueGreenDeployment. */
  readonly switchover: iam.PolicyStatement[];
  /** What deleting the deployment with its green target needs besides the delete itself. */
  readonly deleteTarget: iam.PolicyStatement[];
}

export interface BlueGreenGrantsProps {
  /** ARNs of RDS resources in this stack's account and region. */
  readonly arn: RdsArn;
  /** The source database's ARN (CreateBlueGreenDeployment's Source). */
  readonly sourceArn: string;
  /**
   * The cluster parameter groups green may be given (blue's and the target): Aurora only.
   * @default - none
   */
  readonly clusterParameterGroups?: string[];
}

const allow = (actions: string[], resources: string[]) =>
  new iam.PolicyStatement({ actions, resources });

/**
 * The dependent actions AWS lists for each blue/green operation, on the resource types the
 * SAR gives each of them. Green's names are chosen by RDS ("-green-" and random characters),
 * and "attached IAM policies can't contain partial resource name patterns such as
 * my-db-prefix-*. Only wildcards (*) are supported", so green's resources are "*".
 *
 * RDS DB instances:
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-authorizing-access.html
 *
 * Aurora DB clusters, verbatim: "The user who creates a blue/green deployment must have
 * permissions to perform the following RDS operations: rds:CreateBlueGreenDeployment,
 * rds:AddTagsToResource, rds:CreateDBCluster, rds:CreateDBInstance,
 * rds:CreateDBClusterEndpoint"; "The user who switches over a blue/green deployment must have
 * permissions to perform the following RDS operations: rds:SwitchoverBlueGreenDeployment,
 * rds:ModifyDBCluster, rds:PromoteReadReplicaDBCluster"; "The user who deletes a blue/green
 * deployment must have permissions to perform the following RDS operations:
 * rds:DeleteBlueGreenDeployment, rds:DeleteDBCluster, rds:DeleteDBInstance,
 * rds:DeleteDBClusterEndpoint".
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-authorizing-access.html
 * The SAR's resource types for each (required marked *): CreateDBCluster: cluster*,
 * cluster-pg*, og*, subgrp*; CreateDBInstance: db*, cluster, og, pg, subgrp;
 * CreateDBClusterEndpoint: cluster*, cluster-endpoint*; AddTagsToResource: cluster,
 * cluster-endpoint, db, deployment; ModifyDBCluster: cluster*; PromoteReadReplicaDBCluster:
 * cluster*; DeleteDBCluster: cluster*; DeleteDBInstance: db*; DeleteDBClusterEndpoint:
 * cluster-endpoint*.
 * Global databases (CreateGlobalCluster, ...) are not supported by this app, so not granted.
 */
export function blueGreenGrants(
  level: DatabaseLevel,
  props: BlueGreenGrantsProps,
): BlueGreenGrants {
  const { arn } = props;
  const deployments = arn('deployment', '*');
  if (level === 'instance') {
    const instances = arn('db', '*');
    const groups = arn('pg', '*');
    return {
      createResources: [props.sourceArn, groups],
      create: [
        allow(
          ['rds:AddTagsToResource', 'rds:CreateDBInstanceReadReplica'],
          [instances, deployments, groups, arn('subgrp', '*'), arn('og', '*')],
        ),
      ],
      switchover: [allow(['rds:ModifyDBInstance', 'rds:PromoteReadReplica'], [instances])],
      deleteTarget: [allow(['rds:DeleteDBInstance'], [instances])],
    };
  }
  const clusters = arn('cluster', '*');
  const instances = arn('db', '*');
  const endpoints = arn('cluster-endpoint', '*');
  // Green's instances get the DB parameter group RDS chooses for them (blue's instances', or
  // the target family's default on a major upgrade), with blue's option and subnet groups,
  // whose names an adopted platform does not configure.
  const instanceGroups = arn('pg', '*');
  const optionGroups = arn('og', '*');
  const subnetGroups = arn('subgrp', '*');
  // Green's cluster is created with TargetDBClusterParameterGroupName: named, not "*".
  const clusterGroups = (props.clusterParameterGroups ?? []).map((g) => arn('cluster-pg', g));
  return {
    createResources: [props.sourceArn, ...clusterGroups],
    create: [
      allow(['rds:CreateDBCluster'], [clusters, ...clusterGroups, optionGroups, subnetGroups]),
      allow(
        ['rds:CreateDBInstance'],
        [instances, clusters, instanceGroups, optionGroups, subnetGroups],
      ),
      // Custom endpoints are copied to green too.
      // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeBlueGreenDeployments.html (examples)
      allow(['rds:CreateDBClusterEndpoint'], [clusters, endpoints]),
      // Blue's tags are copied to green's resources, and the deployment gets the run's tag.
      // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-considerations.html
      allow(['rds:AddTagsToResource'], [clusters, instances, endpoints, deployments]),
    ],
    // Both clusters are renamed (blue to -old1, green to blue's name).
    // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions
    switchover: [allow(['rds:ModifyDBCluster', 'rds:PromoteReadReplicaDBCluster'], [clusters])],
    deleteTarget: [
      allow(['rds:DeleteDBCluster'], [clusters]),
      allow(['rds:DeleteDBInstance'], [instances]),
      allow(['rds:DeleteDBClusterEndpoint'], [endpoints]),
    ],
  };
}

/**
 * The resources these statements name by wildcard, except `known` (acknowledged with their
 * own reason), once each: what a role's cdk-nag acknowledgement must cover.
 */
export function wildcardResources(statements: iam.PolicyStatement[], known: string[]): string[] {
  return [
    ...new Set(
      statements.flatMap((s) => s.resources).filter((r) => r.includes('*') && !known.includes(r)),
    ),
  ];
}
