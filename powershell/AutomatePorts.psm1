<#
.SYNOPSIS
    automate-ports from PowerShell: runs automate-ports.exe and returns its report as an object.

.DESCRIPTION
    Works in Windows PowerShell 5.1 and PowerShell 7. The exe writes its JSON report to a file
    itself, as UTF-8: nothing passes through the console's code page, so names and German text
    arrive intact (piping the exe's stdout through Windows PowerShell 5.1 would garble them).
    The exit code is kept in $LASTEXITCODE: 0 every required check passed, 1 one failed,
    2 a usage or input error (then this function throws the exe's one-line message).

.EXAMPLE
    Import-Module .\AutomatePorts.psm1
    $r = Invoke-AutomatePorts check --role agent
    $r.checks | Where-Object verdict -ne 'pass' | Format-Table id, ports, verdict, reason
    "exit code: $LASTEXITCODE"

.EXAMPLE
    # Keep the report (for a fleet collection): written by the exe, UTF-8, no BOM.
    Invoke-AutomatePorts check --role agent -ReportPath "C:\Windows\Temp\automate-ports.json"
#>

function Invoke-AutomatePorts {
    [CmdletBinding()]
    param(
        # automate-ports.exe; by default the one next to this module, else the one in PATH.
        [string] $Exe,
        # Where the JSON report is written; a temporary file (removed afterwards) by default.
        [string] $ReportPath,
        # The subcommand and its arguments, as for the exe (check --role agent ...).
        [Parameter(ValueFromRemainingArguments = $true)]
        [string[]] $Arguments
    )
    if (-not $Exe) {
        $Exe = Join-Path $PSScriptRoot 'automate-ports.exe'
        if (-not (Test-Path -LiteralPath $Exe)) { $Exe = 'automate-ports.exe' }
    }
    $keep = [bool]$ReportPath
    if (-not $keep) {
        $ReportPath = Join-Path ([System.IO.Path]::GetTempPath()) ("automate-ports-" + [guid]::NewGuid() + ".json")
    }
    # English for scripts (reasons and hints stay comparable across a fleet); the report file is
    # the exe's own JSON, whatever the table on stdout says.
    $all = @($Arguments) + @('--lang', 'en', '--output', ("json:" + $ReportPath), '--quiet')
    $errFile = [System.IO.Path]::GetTempFileName()
    try {
        & $Exe @all 2> $errFile | Out-Null
        $code = $LASTEXITCODE
        if ($code -eq 2) {
            $message = (Get-Content -LiteralPath $errFile -Encoding UTF8 | Select-Object -First 1)
            $global:LASTEXITCODE = $code
            throw "automate-ports: $message"
        }
        if (-not (Test-Path -LiteralPath $ReportPath)) {
            $global:LASTEXITCODE = $code
            throw "automate-ports wrote no report (exit code $code)"
        }
        $report = Get-Content -LiteralPath $ReportPath -Raw -Encoding UTF8 | ConvertFrom-Json
        $global:LASTEXITCODE = $code
        return $report
    }
    finally {
        Remove-Item -LiteralPath $errFile -ErrorAction SilentlyContinue
        if (-not $keep) { Remove-Item -LiteralPath $ReportPath -ErrorAction SilentlyContinue }
    }
}

Export-ModuleMember -Function Invoke-AutomatePorts
